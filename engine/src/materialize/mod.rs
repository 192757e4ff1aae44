//! Materializing a selection: plan steps in dependency order, then execute them with bounded
//! concurrency, retries with exponential backoff and jitter, per-attempt timeouts and cancellation.
//!
//! Each step follows the durability protocol: the run store records the attempt (and allocates its
//! sequence number) before any work; data files are staged invisibly; one Delta commit carrying the
//! `txn` (asset key, sequence number) makes them visible; then the materialization is recorded. A
//! cancelled or timed-out step stops before its commit, so tables never hold half a result.
//!
//! Parts: this module holds the request and report types and [`Instance::materialize`] (record the run,
//! then execute it); `executor` launches ready steps with bounded concurrency and cascades skips;
//! `step` runs one step through its attempts (retries, timeout, cancel, commit); `inputs` registers
//! upstreams for a step and decodes what a kind returned into a stream of batches.

mod audit;
mod claim;
mod compute;
mod control;
pub use control::Rerun;
mod dispatch;
mod executor;
use executor::{Executor, RunState};
mod faults;
mod incremental;
mod inputs;
mod merge;
mod observe;
pub(crate) mod published;
mod record;
mod reproduce;
mod resume;
pub use reproduce::{Diff, Reproduction, Target};
mod schema_change;
mod stages;
mod step;
mod submit;
mod worker;
pub use worker::{
    InProcessQueue, QueueError, StepQueue, StepTask, TakenTask, TaskOutcome, WorkerOptions,
    WorkerReport,
};

pub use inputs::schema_json;

use crate::error::EngineError;
use crate::hash::short_hash;
use crate::instance::Instance;
use crate::key::{AssetKey, PartitionKey, RunId, StepKey};
use crate::kinds::{FailureClass, StepContext, StepData, StepError, StepOutput, UpstreamInput};
use crate::partitions::{PartitionSelection, Upstream};
use crate::staleness::{freshness, short, Freshness};
use crate::store::{
    Materialization, NewEvent, NewMaterialization, RunRecord, RunStatus, StepOutcome, StepRecord,
    StepStatus, UpstreamRead,
};
use crate::upstream::upstreams;
use crate::warehouse::{CommitMeta, Staged, TableMeta, WriteScope};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use spine_schemas::events::{CheckSeverity, Event};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What to materialize and how.
#[derive(Clone, Default)]
pub struct MaterializeRequest {
    /// Selection expression; `None` = every asset.
    pub selection: Option<String>,
    /// Recompute fresh assets too.
    pub force: bool,
    /// Steps at once (default: project setting).
    pub concurrency: Option<usize>,
    /// Cancels the run (Ctrl-C).
    pub cancel: CancellationToken,
    /// Receives progress.
    pub observer: Option<Arc<dyn RunObserver>>,
    /// When another live run is materializing a step this run needs, skip it (with that reason)
    /// instead of waiting for it.
    pub no_wait: bool,
    /// Which partitions of the selected partitioned assets to materialize (default: all that exist).
    pub partitions: PartitionSelection,
    /// Incremental assets rebuild their tables instead of appending (implies `force`).
    pub full_refresh: bool,
}

/// Progress callbacks (the CLI draws its progress bar from these).
pub trait RunObserver: Send + Sync {
    /// The plan is recorded.
    fn planned(&self, _run_id: &RunId, _steps: &[StepKey]) {}
    /// An attempt starts.
    fn step_started(&self, _step: &StepKey, _attempt: u32) {}
    /// A step ended.
    fn step_finished(&self, _report: &StepReport) {}
}

/// How one step ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Asset.
    pub key: AssetKey,
    /// Partition, for a step of a partitioned asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionKey>,
    /// End state.
    pub status: StepStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Rows written.
    pub rows: Option<i64>,
    /// Delta version written.
    pub delta_version: Option<i64>,
    /// Wall time.
    pub duration_ms: u128,
    /// Error, when failed.
    pub error: Option<String>,
    /// Why skipped / up to date.
    pub reason: Option<String>,
    /// Whether the failure was worth retrying (failed steps only).
    pub failure_class: Option<FailureClass>,
    /// Whether its failure stopped the run ([`crate::kinds::StepError::stops_run`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stops_run: bool,
}

/// How a run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Run id.
    pub run_id: RunId,
    /// End state.
    pub status: RunStatus,
    /// Steps in plan order.
    pub steps: Vec<StepReport>,
    /// Wall time.
    pub duration_ms: u128,
}

impl StepReport {
    /// A report for a step that has not ended yet.
    fn new(step: &StepKey) -> Self {
        StepReport {
            key: step.asset.clone(),
            partition: step.partition.clone(),
            status: StepStatus::Pending,
            attempts: 0,
            rows: None,
            delta_version: None,
            duration_ms: 0,
            error: None,
            reason: None,
            failure_class: None,
            stops_run: false,
        }
    }
}

impl StepReport {
    /// The step key (asset and partition).
    pub fn step(&self) -> StepKey {
        StepKey {
            asset: self.key.clone(),
            partition: self.partition.clone(),
        }
    }
}

impl RunReport {
    /// Number of steps that ended in `status`.
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

enum AttemptError {
    Failed(StepError),
    /// The kind parked the step until a signal.
    Parked(String),
    Cancelled,
    /// The run store failed under the attempt (reading what it reads): no step failure; the step
    /// is picked up again once the store answers (`resume`, or a worker's re-claim).
    Store(crate::error::StoreError),
}

/// Why the compute stage stopped without output or failure: the kind parked the step, or the store
/// failed while the step's inputs were read.
enum Interrupted {
    Parked(String),
    Store(crate::error::StoreError),
}

/// What reading a step's inputs can fail with: the step (an upstream that cannot be read) or the
/// run store under it.
enum InputError {
    Step(StepError),
    Store(crate::error::StoreError),
}

impl From<StepError> for InputError {
    fn from(e: StepError) -> Self {
        InputError::Step(e)
    }
}

/// How a recorded run is executed.
#[derive(Clone, Default)]
pub struct ExecuteOptions {
    /// Steps at once (default: project setting).
    pub concurrency: Option<usize>,
    /// Cancels the run (Ctrl-C).
    pub cancel: CancellationToken,
    /// Receives progress.
    pub observer: Option<Arc<dyn RunObserver>>,
    /// Skip steps another live run is materializing instead of waiting for them.
    pub no_wait: bool,
}

impl Instance {
    /// Plans and executes a selection: [`submit`](Instance::submit), then [`execute`](Instance::execute) in
    /// this process. Returns the report; the run's outcome is in `status`.
    pub async fn materialize(&self, req: MaterializeRequest) -> Result<RunReport, EngineError> {
        let run_id = self
            .submit_with(
                req.selection.as_deref(),
                req.force,
                req.full_refresh,
                &req.partitions,
            )
            .await?;
        let opts = ExecuteOptions {
            concurrency: req.concurrency,
            cancel: req.cancel,
            observer: req.observer,
            no_wait: req.no_wait,
        };
        self.execute(&run_id, opts).await
    }

    /// Executes a queued run in this process: takes it (`queued` → `running`, atomically, so two
    /// executors never both run it), runs its planned steps, and records how it ended.
    pub async fn execute(
        &self,
        run_id: &RunId,
        opts: ExecuteOptions,
    ) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let (executor, plan) = Executor::take(self, run_id, &opts).await?;
        executor.run(plan, started).await
    }
}
