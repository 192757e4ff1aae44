//! What `assets check` knows of an asset's upstreams when it asks a kind for the asset's schema
//! ([`AssetKind::schema`](super::AssetKind::schema)): their schemas, planned or declared or probed, and
//! why the others are not known yet.

use crate::key::AssetKey;
use arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// The upstream schemas known so far, in dependency order.
#[derive(Debug, Default)]
pub struct UpstreamSchemas {
    known: HashMap<AssetKey, SchemaRef>,
    unknown: HashMap<AssetKey, String>,
}

impl UpstreamSchemas {
    /// Records `key`'s schema: known, or not and why (empty: no reason given).
    pub fn insert(&mut self, key: AssetKey, schema: Result<SchemaRef, String>) {
        match schema {
            Ok(s) => {
                self.known.insert(key, s);
            }
            Err(why) => {
                self.unknown.insert(key, why);
            }
        }
    }

    /// `key`'s schema, if known.
    pub fn get(&self, key: &AssetKey) -> Option<&SchemaRef> {
        self.known.get(key)
    }

    /// A session in which each of `keys` is an empty table of its schema, to plan a query over them;
    /// the error says which one is not known yet, and why.
    pub fn session(&self, keys: &[AssetKey]) -> Result<SessionContext, String> {
        let ctx = SessionContext::new();
        for key in keys {
            let Some(schema) = self.known.get(key) else {
                return Err(match self.unknown.get(key).filter(|w| !w.is_empty()) {
                    Some(why) => format!("upstream '{key}' has no known schema yet: {why}"),
                    None => format!(
                        "upstream '{key}' has no known schema yet (declare its `schema:`, or materialize it first)"
                    ),
                });
            };
            let table = MemTable::try_new(schema.clone(), vec![vec![]])
                .map_err(|e| format!("upstream '{key}': {e}"))?;
            ctx.register_table(TableReference::bare(key.as_str()), Arc::new(table))
                .map_err(|e| format!("upstream '{key}': {e}"))?;
        }
        Ok(ctx)
    }
}
