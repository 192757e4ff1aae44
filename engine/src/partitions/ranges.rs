//! Partition states compressed into ranges of consecutive partitions in the same state (`assets
//! partitions ASSET`; the states themselves are read by `crate::reads`).

use crate::key::PartitionKey;

/// Consecutive partitions (in the definition's order) in one state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionRange {
    /// First partition.
    pub first: PartitionKey,
    /// Last partition (the first, for a single one).
    pub last: PartitionKey,
    /// How many.
    pub count: usize,
    /// `fresh`, `stale`, `missing` or `failed` (its latest step failed, and it is not fresh).
    pub state: &'static str,
    /// Why the first of them is stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Collapses `(key, state, reason)` in order into ranges; a stale partition whose reason differs from
/// the previous one's starts a new range.
pub fn compress(
    states: impl IntoIterator<Item = (PartitionKey, &'static str, Option<String>)>,
) -> Vec<PartitionRange> {
    let mut out: Vec<PartitionRange> = Vec::new();
    for (key, state, reason) in states {
        match out.last_mut() {
            Some(r) if r.state == state && r.reason == reason => {
                r.last = key;
                r.count += 1;
            }
            _ => out.push(PartitionRange {
                first: key.clone(),
                last: key,
                count: 1,
                state,
                reason,
            }),
        }
    }
    out
}
