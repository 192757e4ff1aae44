-- Schedule ticks: one row per schedule and scheduled time (the tick's idempotency key). The daemon
-- writes the tick and its queued run in one transaction, so a tick is launched at most once however
-- often the daemon restarts. A schedule's first row (status 'started') records when the daemon began
-- evaluating it: ticks before that are not owed.
CREATE TABLE schedule_ticks (
    schedule   TEXT NOT NULL,
    tick_at    TEXT NOT NULL,      -- the scheduled time, RFC 3339 UTC
    status     TEXT NOT NULL,      -- 'started' | 'launched'
    run_id     TEXT,               -- the run it launched (written in the same transaction)
    reason     TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (schedule, tick_at)
);

-- One daemon per project: the holder renews its lease; a dead holder's lock is taken over.
CREATE TABLE daemon_lock (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner       TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    lease_until INTEGER NOT NULL    -- milliseconds since the Unix epoch
);
