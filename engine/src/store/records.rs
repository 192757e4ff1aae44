//! The records the run store keeps and hands out: runs, their steps, materializations with what they
//! read, and how a step ends.

use super::{CheckOutcome, RunStatus, StepStatus};
use crate::events::NewEvent;
use crate::key::{AssetKey, PartitionKey, RunId, StepKey};
use serde::{Deserialize, Serialize};

/// A run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id.
    pub run_id: RunId,
    /// State.
    pub status: RunStatus,
    /// The selection it was asked for.
    pub selection: Option<String>,
    /// Whether fresh assets were recomputed.
    pub force: bool,
    /// Whether incremental assets rebuild their tables instead of appending (`--full-refresh`).
    #[serde(default)]
    pub full_refresh: bool,
    /// When it was created.
    pub created_at: String,
    /// When it started.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Process that executes it.
    #[serde(default)]
    pub pid: Option<i64>,
    /// Host of that process.
    #[serde(default)]
    pub host: Option<String>,
    /// Until when its executor's lease holds (milliseconds since the Unix epoch), while running.
    #[serde(default)]
    pub lease_until_ms: Option<i64>,
    /// Who holds it while it runs: its executor (`host:pid:run`), or
    /// [`WORKERS_OWNER`](crate::store::WORKERS_OWNER) when workers execute its steps.
    #[serde(default)]
    pub owner: Option<String>,
    /// Who or what launched it: `cli:USER`, `ui:USER`, `schedule:NAME`, `sensor:NAME`,
    /// `automation`, `backfill:ID`, `rerun:RUN`, `doctor`.
    #[serde(default)]
    pub launched_by: Option<String>,
    /// Tags it was launched with (`--tag KEY=VALUE`).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Who takes a run to execute it, and until when (renewed while it works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    /// The executing process.
    pub pid: i64,
    /// Its host.
    pub host: String,
    /// The execution's claim owner (`host:pid:run`).
    pub owner: String,
    /// Lease deadline, milliseconds since the Unix epoch.
    pub lease_until_ms: i64,
}

/// A step of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Run.
    pub run_id: RunId,
    /// Step id: the step key as text (`asset` or `asset[partition]`).
    pub step_id: String,
    /// Asset.
    pub asset_key: AssetKey,
    /// Partition, for a step of a partitioned asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<PartitionKey>,
    /// Position in the plan's dependency order.
    pub position: i64,
    /// State.
    pub status: StepStatus,
    /// Attempts started.
    pub attempt: i64,
    /// Materialization sequence number allocated to the current attempt.
    pub seq: Option<i64>,
    /// Start of the first attempt.
    pub started_at: Option<String>,
    /// End.
    pub finished_at: Option<String>,
    /// Error of the last failed attempt.
    pub error: Option<String>,
    /// Why it was skipped or up to date.
    pub reason: Option<String>,
    /// For a failed step: `retryable` or `permanent`.
    #[serde(default)]
    pub failure_class: Option<String>,
}

impl RunRecord {
    /// A run as submitted: `queued`, created at `created_at`, launched by `launched_by`, with no
    /// selection, flags, tags or owner yet.
    pub fn queued(run_id: &RunId, created_at: String, launched_by: Option<&str>) -> Self {
        RunRecord {
            run_id: run_id.clone(),
            status: RunStatus::Queued,
            selection: None,
            force: false,
            full_refresh: false,
            created_at,
            started_at: None,
            finished_at: None,
            error: None,
            pid: None,
            host: None,
            lease_until_ms: None,
            owner: None,
            launched_by: launched_by.map(str::to_string),
            tags: Default::default(),
        }
    }
}

impl StepRecord {
    /// Step `key` of run `run_id` as planned: pending at `position` of the plan's order, no attempt.
    pub fn planned(run_id: &RunId, position: i64, key: &StepKey) -> Self {
        StepRecord {
            run_id: run_id.clone(),
            step_id: key.to_string(),
            asset_key: key.asset.clone(),
            partition_key: key.partition.clone(),
            position,
            status: StepStatus::Pending,
            attempt: 0,
            seq: None,
            started_at: None,
            finished_at: None,
            error: None,
            reason: None,
            failure_class: None,
        }
    }

    /// The step key (asset and partition).
    pub fn step_key(&self) -> StepKey {
        StepKey {
            asset: self.asset_key.clone(),
            partition: self.partition_key.clone(),
        }
    }
}

/// What a materialization read from one upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRead {
    /// Upstream asset.
    pub key: AssetKey,
    /// The upstream partition read, when it is partitioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionKey>,
    /// Its materialization that was read.
    pub materialization_id: Option<i64>,
    /// Its Delta version that was read.
    pub delta_version: Option<i64>,
}

/// A materialization to record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewMaterialization {
    /// Asset.
    pub asset_key: AssetKey,
    /// Partition, for a partitioned asset.
    pub partition_key: Option<PartitionKey>,
    /// Run.
    pub run_id: RunId,
    /// Step.
    pub step_id: String,
    /// Sequence number, equal to the Delta `txn` version of the commit.
    pub seq: i64,
    /// Delta table version produced.
    pub delta_version: i64,
    /// Rows written.
    pub row_count: i64,
    /// Arrow schema as JSON.
    pub schema: serde_json::Value,
    /// Content hash of the data.
    pub data_version: String,
    /// Code version used.
    pub code_version: String,
    /// Exact upstream versions read.
    pub upstream: Vec<UpstreamRead>,
    /// Metadata reported by the step.
    pub metadata: serde_json::Value,
    /// Whether downstream assets read it: false when an `error` check failed (write-audit-publish:
    /// the version exists but the last published one is what the asset serves).
    #[serde(default = "published_default")]
    pub published: bool,
    /// The asset's checks on it, recorded with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckOutcome>,
    /// Column-level lineage of its columns (SQL assets; empty when unknown), recorded with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: crate::column_lineage::ColumnLineage,
}

fn published_default() -> bool {
    true
}

impl NewMaterialization {
    /// The step key (asset and partition) materialized.
    pub fn step_key(&self) -> StepKey {
        StepKey {
            asset: self.asset_key.clone(),
            partition: self.partition_key.clone(),
        }
    }
}

/// A recorded materialization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Materialization {
    /// Id (increasing).
    pub id: i64,
    /// When it was recorded.
    pub created_at: String,
    /// The rest.
    #[serde(flatten)]
    pub m: NewMaterialization,
}

/// A started step attempt (see [`RunStore::start_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartedAttempt {
    /// The attempt's materialization sequence number (its commit's `txn` version).
    pub seq: i64,
    /// The asset partition's last number before it (0: none): when it is the one a run knows,
    /// nobody else started the step key meanwhile.
    pub previous: i64,
}

/// How a step ends.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// Final status.
    pub status: StepStatus,
    /// Error (failed).
    pub error: Option<String>,
    /// For a failed step: `retryable` or `permanent`.
    pub failure_class: Option<String>,
    /// Reason (skipped, up to date).
    pub reason: Option<String>,
    /// The materialization to record with it (succeeded).
    pub materialization: Option<NewMaterialization>,
    /// Events to append in the same transaction. A step that was running releases its run's claim
    /// on the step key in the same transaction too.
    pub events: Vec<NewEvent>,
}
