-- Which partition of an upstream a materialization read (NULL: the whole upstream).
ALTER TABLE lineage ADD COLUMN upstream_partition TEXT;
