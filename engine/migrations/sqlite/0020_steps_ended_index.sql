-- Each step key's latest ended step (`assets gc` keeps it; `latest_step_outcomes` reads it).
CREATE INDEX IF NOT EXISTS steps_ended ON steps (asset_key, partition_key, finished_at);
