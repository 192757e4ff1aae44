-- Tags a run was launched with (`--tag KEY=VALUE`), as a JSON object; NULL for none.
ALTER TABLE runs ADD COLUMN tags TEXT;
