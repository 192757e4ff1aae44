-- Publications record rollouts: `publish` (a held-back version made readable) or `retract` (a
-- published version taken back, so an older one is live again), and who did it.
ALTER TABLE publications ADD COLUMN action TEXT NOT NULL DEFAULT 'publish';
ALTER TABLE publications ADD COLUMN actor TEXT;
