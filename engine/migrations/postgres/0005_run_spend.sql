-- What a run's agent steps paid (issue 31, run budgets): tokens and cost per step of a run, added to
-- as each fresh model call completes (cost in billionths, so sums are exact); a run's total is
-- checked against its budget.
CREATE TABLE run_spend (
    run_id        TEXT COLLATE "C" NOT NULL,
    asset_key     TEXT COLLATE "C" NOT NULL,
    partition_key TEXT COLLATE "C" NOT NULL DEFAULT '',
    tokens        BIGINT NOT NULL,
    cost_nanos    BIGINT NOT NULL,
    PRIMARY KEY (run_id, asset_key, partition_key)
);
