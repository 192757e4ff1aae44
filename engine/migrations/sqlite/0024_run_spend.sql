-- What a run's agent steps paid (issue 31, run budgets): tokens and cost per step of a run, added to
-- as each fresh model call completes (cost in billionths, so sums are exact); a run's total is
-- checked against its budget.
CREATE TABLE run_spend (
    run_id        TEXT NOT NULL,
    asset_key     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    tokens        INTEGER NOT NULL,
    cost_nanos    INTEGER NOT NULL,
    PRIMARY KEY (run_id, asset_key, partition_key)
);
