-- The number an asset partition's sequence had before its last allocation: the allocating upsert
-- returns it with the new one (`start_in`), instead of a locking read before it.
ALTER TABLE asset_sequences ADD COLUMN prev_seq INTEGER NOT NULL DEFAULT 0;
