-- Backfills: a durable request to materialize many partitions, chunked into runs. Everything a
-- backfill will do is recorded when it is created (its runs, queued, with their planned steps), so a
-- crash at any moment leaves either no backfill or a complete one; its progress is read from its runs'
-- steps, never kept twice.
CREATE TABLE backfills (
    backfill_id  TEXT PRIMARY KEY,
    selection    TEXT,
    partitions   TEXT NOT NULL,    -- the request as given: FROM..TO, keys, or 'all'
    filter       TEXT,             -- 'missing' | 'failed' | NULL (every partition in range)
    per_run      INTEGER NOT NULL, -- partitions per run
    concurrency  INTEGER,          -- steps at once within a run (NULL: the project's setting)
    steps        INTEGER NOT NULL, -- step keys it covers
    created_at   TEXT NOT NULL,
    cancelled_at TEXT              -- set by `assets backfill cancel`, cleared by resume
);

-- Each chunk's runs: attempt 0 is planned at creation; a resume adds one run of what the chunk has
-- not yet committed.
CREATE TABLE backfill_runs (
    backfill_id TEXT NOT NULL REFERENCES backfills(backfill_id),
    chunk       INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    run_id      TEXT NOT NULL UNIQUE REFERENCES runs(run_id),
    PRIMARY KEY (backfill_id, chunk, attempt)
);
