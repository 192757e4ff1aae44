-- Who or what launched a run: `cli:USER`, `ui:USER`, `schedule:NAME`, `sensor:NAME`, `automation`,
-- `backfill:ID`, `rerun:RUN`, `doctor`. NULL for runs recorded before this column existed.
ALTER TABLE runs ADD COLUMN launched_by TEXT;
