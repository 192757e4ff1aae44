-- Delta versions that hold the same rows as an earlier one: `assets optimize` commits a compaction
-- (dataChange = false) at to_version of what from_version held, so readers of a materialization recorded
-- at from_version read the compacted files instead (and vacuum may remove the old ones).
CREATE TABLE version_rewrites (
    asset_key    TEXT NOT NULL,
    from_version INTEGER NOT NULL,
    to_version   INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    PRIMARY KEY (asset_key, from_version)
);
