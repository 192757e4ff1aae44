//! Walking recorded column lineage across assets (`assets lineage KEY --column C`): upstream through
//! the columns each column comes from, downstream through the columns computed from it, using each
//! asset's latest materialization that recorded column lineage.

use super::{ColumnLineage, How};
use crate::error::{DefinitionError, EngineError};
use crate::key::AssetKey;
use crate::Engine;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One column in a walk, with how it relates to its parent.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnNode {
    /// The asset.
    pub asset: AssetKey,
    /// Its column.
    pub column: String,
    /// How the parent depends on it (upstream), or it on the parent (downstream). None at the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<How>,
    /// Already expanded elsewhere in the walk (its children are not repeated).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    /// Further upstream or downstream. Columns reached only as a filter are not expanded.
    pub children: Vec<ColumnNode>,
}

type Graph = BTreeMap<AssetKey, ColumnLineage>;

/// The (asset, column, how) pairs next to `(asset, column)`.
fn next(graph: &Graph, asset: &AssetKey, column: &str, up: bool) -> Vec<(AssetKey, String, How)> {
    if up {
        return graph
            .get(asset)
            .and_then(|cols| cols.iter().find(|c| c.column == column))
            .map(|c| {
                c.sources
                    .iter()
                    .map(|s| (s.asset.clone(), s.column.clone(), s.how))
                    .collect()
            })
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for (a, cols) in graph {
        for c in cols {
            for s in &c.sources {
                if &s.asset == asset && s.column == column {
                    out.push((a.clone(), c.column.clone(), s.how));
                }
            }
        }
    }
    // Direct dependents first, then those that only filter on it.
    out.sort_by(|x, y| ((x.2 == How::Filter), &x.0, &x.1).cmp(&((y.2 == How::Filter), &y.0, &y.1)));
    out
}

fn expand(
    graph: &Graph,
    node: &mut ColumnNode,
    up: bool,
    depth: Option<usize>,
    level: usize,
    seen: &mut BTreeSet<(AssetKey, String)>,
) {
    if depth.is_some_and(|d| level >= d) {
        return;
    }
    for (asset, column, how) in next(graph, &node.asset, &node.column, up) {
        let mut child = ColumnNode {
            asset: asset.clone(),
            column: column.clone(),
            how: Some(how),
            repeated: false,
            children: Vec::new(),
        };
        if how != How::Filter {
            if seen.insert((asset, column)) {
                expand(graph, &mut child, up, depth, level + 1, seen);
            } else {
                child.repeated = !next(graph, &child.asset, &child.column, up).is_empty();
            }
        }
        node.children.push(child);
    }
}

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
