-- Bookkeeping that follows from a step's own row, kept in the statement that changes the row: every
-- statement is a round trip to the database thread, and these ran once per step on the hot path.
--
-- A step attempt's sequence number (the Delta `txn` version of its commit) is allocated by setting
-- `steps.seq` to one past the asset (partition)'s last one; this records it as the last one.
CREATE TRIGGER steps_sequence AFTER UPDATE OF seq ON steps
WHEN NEW.seq IS NOT NULL AND NEW.seq IS NOT OLD.seq
BEGIN
    INSERT INTO asset_sequences (asset_key, partition_key, last_seq)
    VALUES (NEW.asset_key, COALESCE(NEW.partition_key, ''), NEW.seq)
    ON CONFLICT (asset_key, partition_key) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq);
END;

-- A step that stops running (ended, parked, settled by recovery) releases its run's claim on the step
-- key. A claim another run took over is that run's and stays.
CREATE TRIGGER steps_release_claim AFTER UPDATE OF status ON steps
WHEN OLD.status = 'running' AND NEW.status <> 'running'
BEGIN
    DELETE FROM step_claims
    WHERE asset_key = NEW.asset_key AND partition_key = COALESCE(NEW.partition_key, '')
      AND run_id = NEW.run_id;
END;
