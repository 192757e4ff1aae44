//! Walking recorded column lineage across assets (`assets lineage KEY --column C`), a read over the
//! run store's latest materializations: the walk itself is `column_lineage::walk`'s.

use crate::column_lineage::walk::expand;
use crate::column_lineage::ColumnNode;
use crate::error::{DefinitionError, EngineError};
use crate::key::AssetKey;
use crate::Engine;
use std::collections::BTreeSet;

impl Engine {
    /// The recorded column lineage of `key`'s `column`: upstream (what it comes from) or downstream
    /// (what is computed from it), at most `depth` levels. E0402 unknown asset, E0420 an asset
    /// without recorded column lineage or a column it does not have.
    pub async fn column_lineage(
        &self,
        key: &str,
        column: &str,
        upstream: bool,
        depth: Option<usize>,
    ) -> Result<ColumnNode, EngineError> {
        crate::selection::select(&self.project, Some(key))?;
        let key = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
        let graph = self.store.latest_column_lineage().await?;
        // The asset's columns: from its recorded lineage, else (a source, a kind that records none)
        // from its latest materialization's schema, where a downstream walk can start.
        let recorded: Option<Vec<String>> = graph
            .get(&key)
            .map(|cols| cols.iter().map(|c| c.column.clone()).collect());
        let columns = match (&recorded, upstream) {
            (Some(cols), _) => cols.clone(),
            (None, false) => self.schema_columns(&key).await?,
            (None, true) => Vec::new(),
        };
        if columns.is_empty() {
            let source = self.project.assets[&key].kind == "source";
            return Err(DefinitionError::new(
                "E0420",
                format!("asset '{key}' has no recorded column lineage"),
            )
            .hint(if source && upstream {
                format!("a source is where its columns start; what they feed: assets lineage {key} --column {column} --downstream")
            } else {
                format!("SQL assets record it when they are materialized: assets materialize {key}")
            })
            .into());
        }
        if !columns.iter().any(|c| c == column) {
            return Err(DefinitionError::new(
                "E0420",
                format!("'{column}' is not a column of {key}"),
            )
            .hint(format!("its columns: {}", columns.join(", ")))
            .into());
        }
        let mut root = ColumnNode {
            asset: key.clone(),
            column: column.to_string(),
            how: None,
            repeated: false,
            children: Vec::new(),
        };
        let mut seen = BTreeSet::from([(key, column.to_string())]);
        expand(&graph, &mut root, upstream, depth, 0, &mut seen);
        Ok(root)
    }

    /// The columns of `key`'s latest materialization (any partition's), from its recorded schema.
    async fn schema_columns(&self, key: &AssetKey) -> Result<Vec<String>, EngineError> {
        let Some(m) = self
            .store
            .materializations(key, 1)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Vec::new());
        };
        Ok(m.m
            .schema
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}
