-- Column-level lineage: per materialization, each output column's upstream (asset, column) pairs and
-- how (identity, transformed, aggregated, filter). A column with no upstream (a literal) has one row
-- with NULL upstream fields, so every output column is listed.
CREATE TABLE column_lineage (
    materialization_id INTEGER NOT NULL REFERENCES materializations (id),
    asset_key          TEXT NOT NULL,
    column_name        TEXT NOT NULL,
    position           INTEGER NOT NULL,
    upstream_key       TEXT,
    upstream_column    TEXT,
    how                TEXT
);
CREATE INDEX column_lineage_by_materialization ON column_lineage (materialization_id);
CREATE INDEX column_lineage_by_upstream ON column_lineage (upstream_key, upstream_column);
