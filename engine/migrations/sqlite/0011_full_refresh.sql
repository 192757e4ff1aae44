-- `materialize --full-refresh`: incremental assets of this run rebuild their tables instead of appending.
ALTER TABLE runs ADD COLUMN full_refresh INTEGER NOT NULL DEFAULT 0;
