//! Walking recorded lineage one materialization at a time: what a materialization read is in its
//! `upstream` list; who read it is in the `lineage` table.

use super::{Materialization, StoreResult};
use async_trait::async_trait;

/// What the CLI and the UI read of lineage: the latest column lineage. Nothing here changes state.
#[async_trait]
pub trait LineageReads: Send + Sync {
    /// The column lineage of each asset's latest materialization that recorded one, by asset.
    async fn latest_column_lineage(
        &self,
    ) -> StoreResult<
        std::collections::BTreeMap<crate::key::AssetKey, crate::column_lineage::ColumnLineage>,
    >;
}

/// The lineage half of the run store.
#[async_trait]
pub trait LineageStore: Send + Sync {
    /// A materialization by id.
    async fn materialization(&self, id: i64) -> StoreResult<Option<Materialization>>;
    /// The materializations that read materialization `id` (of asset `key`), oldest first.
    async fn readers(
        &self,
        key: &crate::key::AssetKey,
        id: i64,
    ) -> StoreResult<Vec<Materialization>>;
}
