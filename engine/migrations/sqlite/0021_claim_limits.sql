-- The concurrency limits a step claim counts against (`,tag:warehouse=heavy,`): workers count live
-- claims by limit before taking one (`WorkerStore::start_ready_step`).
ALTER TABLE step_claims ADD COLUMN limits TEXT NOT NULL DEFAULT '';
