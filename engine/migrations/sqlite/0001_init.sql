-- Spine run store, SQLite. Timestamps are RFC 3339 text in UTC.
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    selection   TEXT,
    force       INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT
);

CREATE TABLE steps (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    step_id     TEXT NOT NULL,
    asset_key   TEXT NOT NULL,
    partition_key TEXT,
    position    INTEGER NOT NULL,
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT,
    reason      TEXT,
    PRIMARY KEY (run_id, step_id)
);

-- Append-only event log.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL,
    step_id   TEXT,
    ts        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    level     TEXT NOT NULL,
    message   TEXT NOT NULL,
    data      TEXT
);
CREATE INDEX events_run ON events(run_id, id);

-- Per asset (partition) materialization sequence numbers: the Delta txn version of its commits.
CREATE TABLE asset_sequences (
    asset_key     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    last_seq      INTEGER NOT NULL,
    PRIMARY KEY (asset_key, partition_key)
);

CREATE TABLE materializations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_key     TEXT NOT NULL,
    partition_key TEXT,
    run_id        TEXT NOT NULL,
    step_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    delta_version INTEGER NOT NULL,
    row_count     INTEGER NOT NULL,
    schema        TEXT NOT NULL,
    data_version  TEXT NOT NULL,
    code_version  TEXT NOT NULL,
    upstream      TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX materializations_asset ON materializations(asset_key, partition_key, id);

-- Lineage: which upstream materialization (and Delta version) each materialization read.
CREATE TABLE lineage (
    materialization_id          INTEGER NOT NULL REFERENCES materializations(id),
    upstream_key                TEXT NOT NULL,
    upstream_materialization_id INTEGER,
    upstream_delta_version      INTEGER
);
CREATE INDEX lineage_mat ON lineage(materialization_id);
CREATE INDEX lineage_up ON lineage(upstream_key);
