//! What the run store knows about asset tables beyond materializations: Delta versions rewritten by
//! table maintenance (`assets optimize`) that hold the same rows as an earlier version.

use super::StoreResult;
use crate::key::AssetKey;
use async_trait::async_trait;

/// The table-maintenance half of the run store.
#[async_trait]
pub trait TableStore: Send + Sync {
    /// Records that version `to` of `key`'s table holds exactly the rows of version `from` (a
    /// compaction of it).
    async fn record_version_rewrite(&self, key: &AssetKey, from: i64, to: i64) -> StoreResult<()>;
    /// The version to read for the rows of `version`: the newest rewrite of it (following rewrites
    /// of rewrites), or `version` itself.
    async fn read_version(&self, key: &AssetKey, version: i64) -> StoreResult<i64>;
}
