-- Which process owns a run, so a later process can tell that a `running` run was interrupted.
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
