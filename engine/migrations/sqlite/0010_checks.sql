-- Asset checks and write-audit-publish: a materialization whose `error` check failed is kept,
-- unpublished (downstream assets keep reading the last published one) until `assets publish`.
ALTER TABLE materializations ADD COLUMN published INTEGER NOT NULL DEFAULT 1;
CREATE INDEX materializations_published ON materializations (asset_key, partition_key, published, id);

CREATE TABLE check_results (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    materialization_id INTEGER NOT NULL REFERENCES materializations (id),
    asset_key          TEXT NOT NULL,
    partition_key      TEXT,
    run_id             TEXT,
    check_name         TEXT NOT NULL,
    kind               TEXT NOT NULL,
    severity           TEXT NOT NULL,
    passed             INTEGER NOT NULL,
    failing_rows       INTEGER NOT NULL,
    samples            TEXT NOT NULL,
    error              TEXT,
    duration_ms        INTEGER NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX check_results_by_materialization ON check_results (materialization_id);

CREATE TABLE publications (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    materialization_id INTEGER NOT NULL REFERENCES materializations (id),
    reason             TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
