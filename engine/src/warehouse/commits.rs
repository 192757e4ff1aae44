//! Finding Spine's own commits in a table's log: the commit of a step attempt (by its `txn` and run,
//! exact at any table age) and the commit infos after a version (`doctor --repair`).

use super::{CommitInfo, Warehouse};
use crate::error::WarehouseError;
use crate::key::AssetKey;

impl Warehouse {
    /// Finds the commit of run `run_id` that carried sequence number `seq` for `app_id` (as its `txn`):
    /// returns its Delta version and the `spine` commit info, or `None` when that commit never landed.
    /// The run is matched too: a commit with the same step and number written by another run (a run
    /// store restored from an older copy once repeated numbers) is not this attempt's.
    pub async fn find_commit(
        &self,
        key: &AssetKey,
        app_id: &str,
        seq: i64,
        run_id: &str,
    ) -> Result<Option<(i64, CommitInfo)>, WarehouseError> {
        let Some(table) = self.open(key, None).await? else {
            return Ok(None);
        };
        // `txn` versions of an app id only grow: below `seq`, the commit never landed.
        let txn = table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?;
        if txn.is_none_or(|t| t < seq) {
            return Ok(None);
        }
        // Each commit file read by its own version (newest first, from the loaded snapshot down),
        // so a commit another writer adds meanwhile cannot shift the version found. The scan ends
        // at the first commit of this step key with a smaller number: the one sought is newer.
        let latest = table.version().map(|v| v as i64).unwrap_or(-1);
        for version in (0..=latest).rev() {
            let Some(bytes) = table.log_store().read_commit_entry(version as u64).await? else {
                break;
            };
            for step in spine_infos(&bytes) {
                if step.step_id != app_id {
                    continue;
                }
                match step.seq {
                    s if s == seq => {
                        if step.run_id != run_id {
                            tracing::warn!(
                                "{key}: the commit at version {version} carries {app_id}'s sequence \
                                 number {seq} but was written by run {}, not {run_id}",
                                step.run_id
                            );
                            return Ok(None);
                        }
                        return Ok(Some((version, step)));
                    }
                    s if s < seq => return Ok(None),
                    _ => {}
                }
            }
        }
        Ok(None)
    }

    /// The Spine commit infos of `key`'s table in the versions after `after`, newest first, each with
    /// its version (a group commit gives one per step). Empty when the table does not exist.
    pub async fn commit_infos(
        &self,
        key: &AssetKey,
        after: i64,
    ) -> Result<Vec<(i64, CommitInfo)>, WarehouseError> {
        let Some(table) = self.open(key, None).await? else {
            return Ok(Vec::new());
        };
        let latest = table.version().map(|v| v as i64).unwrap_or(-1);
        let mut out = Vec::new();
        for version in ((after + 1).max(0)..=latest).rev() {
            let Some(bytes) = table.log_store().read_commit_entry(version as u64).await? else {
                break;
            };
            out.extend(spine_infos(&bytes).into_iter().map(|i| (version, i)));
        }
        Ok(out)
    }
}

/// The Spine commit infos in one commit file: a step's, or each of a group commit's
/// (`{"group": [info, …]}`); the `spine` value may be stored as an object or as JSON text. Infos
/// that are not a step's (an `optimize`) are left out.
fn spine_infos(commit: &[u8]) -> Vec<CommitInfo> {
    raw_spine_infos(commit)
        .iter()
        .filter_map(CommitInfo::parse)
        .collect()
}

fn raw_spine_infos(commit: &[u8]) -> Vec<serde_json::Value> {
    let text = String::from_utf8_lossy(commit);
    for line in text.lines() {
        let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(spine) = action.get("commitInfo").and_then(|c| c.get("spine")) else {
            continue;
        };
        let spine = match spine {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
            other => other.clone(),
        };
        return match spine.get("group").and_then(|g| g.as_array()) {
            Some(group) => group.clone(),
            None => vec![spine],
        };
    }
    Vec::new()
}
