//! Walking recorded column lineage across assets (`assets lineage KEY --column C`): upstream through
//! the columns each column comes from, downstream through the columns computed from it, using each
//! asset's latest materialization that recorded column lineage.

use super::{ColumnLineage, How};
use crate::key::AssetKey;
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

pub(crate) type Graph = BTreeMap<AssetKey, ColumnLineage>;

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

pub(crate) fn expand(
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
