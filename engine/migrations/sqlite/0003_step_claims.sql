-- Who is materializing a step key (asset + partition) right now, until when. A run claims a step key before
-- it computes the step and releases it when the step ends; another run that wants the same step key waits
-- until the claim is released or its lease expires (the holder stopped renewing it: it died).
-- WITHOUT ROWID and no secondary index: a claim is written and deleted once per step, so each is one
-- b-tree change (releasing a dead run's claims scans this small table).
CREATE TABLE step_claims (
    asset_key     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    run_id        TEXT NOT NULL,
    owner         TEXT NOT NULL,
    lease_until   INTEGER NOT NULL,   -- milliseconds since the Unix epoch
    claimed_at    INTEGER NOT NULL,
    PRIMARY KEY (asset_key, partition_key)
) WITHOUT ROWID;
