//! Dynamic partition sets: keys added at run time, kept in the run store.

use super::StoreResult;
use crate::key::PartitionKey;
use async_trait::async_trait;
use std::collections::HashMap;

/// The dynamic-partitions half of the run store.
#[async_trait]
pub trait PartitionStore: Send + Sync {
    /// Adds `keys` to the set `name` (keys it has already are left as they are); returns how many
    /// were new.
    async fn add_dynamic_partitions(&self, name: &str, keys: &[PartitionKey])
        -> StoreResult<usize>;
    /// Every set's keys, in the order they were added.
    async fn dynamic_partitions(&self) -> StoreResult<HashMap<String, Vec<PartitionKey>>>;
}
