-- The step protocol's bookkeeping moves from triggers into the store's own statements (start_in
-- allocates a sequence number by one upsert of asset_sequences; finish_in releases the run's claim
-- when a running step stops), so every store backend runs the same protocol.
DROP TRIGGER IF EXISTS steps_sequence;
DROP TRIGGER IF EXISTS steps_release_claim;
