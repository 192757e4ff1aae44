//! Column lineage as definitions: how each output column of an asset depends on its upstreams'
//! columns. Declared with `schema:` … `from:` on command and Rust assets; derived from the query for
//! SQL assets by `crate::column_lineage`, which re-exports these types.

use crate::key::AssetKey;
use serde::{Deserialize, Serialize};

/// How an output column depends on an upstream column (weakest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Only decides which rows there are (filter, join, group key).
    Filter,
    /// The same value.
    Identity,
    /// Computed from it row by row.
    Transformed,
    /// Computed from it across rows.
    Aggregated,
}

impl How {
    /// The name used in JSON, tables and golden files.
    pub fn as_str(self) -> &'static str {
        match self {
            How::Filter => "filter",
            How::Identity => "identity",
            How::Transformed => "transformed",
            How::Aggregated => "aggregated",
        }
    }
}

/// An upstream column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    /// The upstream asset.
    pub asset: AssetKey,
    /// Its column.
    pub column: String,
}

/// One upstream column of an output column, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSource {
    /// The upstream asset.
    pub asset: AssetKey,
    /// Its column.
    pub column: String,
    /// How the output depends on it.
    pub how: How,
}

/// The lineage of one output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputColumn {
    /// The output column's name.
    pub column: String,
    /// Its upstream columns: direct ones first, then filters, each group by asset and column.
    pub sources: Vec<ColumnSource>,
}

/// The lineage of every output column of a query, in output order.
pub type ColumnLineage = Vec<OutputColumn>;
