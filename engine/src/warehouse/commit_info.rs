//! What Spine writes into every step's Delta commit (`commitInfo.spine`): everything needed to
//! record the materialization without computing it again (recovery after a crash between commit and
//! record, `doctor --repair` after a lost store), and what `history` shows. One type, written and read
//! by the same code; versioned like events: `format` counts changes older readers must know about,
//! and readers ignore fields they do not know.

use crate::project::columns::ColumnLineage;
use crate::store::UpstreamRead;
use serde::{Deserialize, Serialize};

/// The format written now.
pub const COMMIT_INFO_FORMAT: u32 = 1;

fn format_one() -> u32 {
    1
}

/// A step's commit info.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Its format (1 when absent: written before it was recorded).
    #[serde(default = "format_one")]
    pub format: u32,
    /// The run that committed.
    pub run_id: String,
    /// The step (`asset` or `asset[partition]`), also the `txn` app id.
    pub step_id: String,
    /// The step's sequence number, also the `txn` version.
    pub seq: i64,
    /// The asset's code version.
    #[serde(default)]
    pub code_version: String,
    /// The upstream versions it read.
    #[serde(default)]
    pub upstream: Vec<UpstreamRead>,
    /// Rows of the materialization (of the table, after an append or merge).
    #[serde(default)]
    pub rows: i64,
    /// Its data version.
    #[serde(default)]
    pub data_version: String,
    /// Its Arrow schema as JSON.
    #[serde(default)]
    pub schema: serde_json::Value,
    /// Metadata the kind reported.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Its column lineage.
    #[serde(default)]
    pub columns: ColumnLineage,
    /// The asset's description, for other Delta readers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The asset's owners, for other Delta readers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
}

impl CommitInfo {
    /// As written into the commit.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A commit info read back; `None` for another writer's (or an `optimize`'s) info.
    pub fn parse(v: &serde_json::Value) -> Option<CommitInfo> {
        serde_json::from_value(v.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_reads_older_infos_and_tolerates_newer_fields() {
        let info = CommitInfo {
            format: COMMIT_INFO_FORMAT,
            run_id: "r".into(),
            step_id: "a[2026-01-01]".into(),
            seq: 7,
            code_version: "c".into(),
            upstream: Vec::new(),
            rows: 3,
            data_version: "d".into(),
            schema: serde_json::json!([]),
            metadata: serde_json::json!({"k": 1}),
            columns: Vec::new(),
            description: None,
            owners: Vec::new(),
        };
        assert_eq!(CommitInfo::parse(&info.to_json()), Some(info));
        // Written before `format` existed: format 1.
        let old = serde_json::json!({"run_id": "r", "step_id": "a", "seq": 1, "rows": 2});
        assert_eq!(
            CommitInfo::parse(&old).map(|i| (i.format, i.rows)),
            Some((1, 2))
        );
        // A newer writer's extra field is ignored.
        let newer =
            serde_json::json!({"run_id": "r", "step_id": "a", "seq": 1, "format": 2, "lease": "x"});
        assert_eq!(CommitInfo::parse(&newer).map(|i| i.format), Some(2));
        // Not a step's (an optimize's).
        let optimize = serde_json::json!({"operation": "optimize", "same_rows_as": 3});
        assert_eq!(CommitInfo::parse(&optimize), None);
    }
}
