-- `assets cancel RUN` (or the UI) of a running run: the request is recorded here, and the run's
-- executor, which polls it, cancels its steps before their commits. Queued and parked runs are
-- cancelled at once instead.
ALTER TABLE runs ADD COLUMN cancel_requested_at TEXT;
