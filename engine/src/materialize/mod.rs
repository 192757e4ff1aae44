//! Materializing a selection: plan steps in dependency order, then execute them with bounded
//! concurrency, retries with exponential backoff and jitter, per-attempt timeouts and cancellation.
//!
//! Each step follows the durability protocol: the run store records the attempt (and allocates its
//! sequence number) before any work; data files are staged invisibly; one Delta commit carrying the
//! `txn` (asset key, sequence number) makes them visible; then the materialization is recorded. A
//! cancelled or timed-out step stops before its commit, so tables never hold half a result.
//!
//! Parts: this module holds the request and report types and [`Engine::materialize`] (record the run,
//! then execute it); `executor` launches ready steps with bounded concurrency and cascades skips;
//! `step` runs one step through its attempts (retries, timeout, cancel, commit); `inputs` registers
//! upstreams for a step and decodes what a kind returned into a stream of batches.

mod audit;
mod claim;
mod control;
pub use control::Rerun;
mod executor;
mod faults;
mod incremental;
mod inputs;
mod merge;
mod observe;
pub(crate) mod published;
mod reproduce;
pub use reproduce::{Diff, Reproduction, Target};
mod schema_change;
mod stages;
mod step;
mod submit;

pub use inputs::schema_json;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::hash::short_hash;
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

/// State shared by the steps of one run.
struct RunState {
    run_id: RunId,
    force: bool,
    /// Incremental assets rebuild instead of appending.
    full_refresh: bool,
    cancel: CancellationToken,
    observer: Option<Arc<dyn RunObserver>>,
    /// The latest materialization of every step key, as this run knows it.
    latest: Mutex<HashMap<StepKey, Materialization>>,
    registered: Mutex<HashMap<AssetKey, i64>>,
    session: SessionContext,
    /// Who this run's claims belong to: `host:pid:run`.
    owner: String,
    /// The step keys this execution holds claims on (renewed by one heartbeat task).
    claims: Arc<claim::HeldClaims>,
    no_wait: bool,
    /// Signals that resumed parked steps, by step id.
    signals: HashMap<String, serde_json::Value>,
    /// A step's end could not be written (a full disk): the store may not know how steps ended, so
    /// the run is settled as recovery would settle it rather than just given its end state.
    store_failed: std::sync::atomic::AtomicBool,
    /// Compute slots (`concurrency` of them): a step holds one from its start to its end, except
    /// that a partition's step frees it once its output is staged, so partitions of one table that
    /// wait for their commits side by side are committed together (see `warehouse::partitioned`).
    slots: Arc<tokio::sync::Semaphore>,
}

impl RunState {
    /// Makes `key` readable in the run's session (replacing any earlier registration) and remembers
    /// which Delta version it serves.
    fn register(
        &self,
        key: &AssetKey,
        provider: Arc<dyn datafusion::catalog::TableProvider>,
        version: i64,
    ) -> datafusion::error::Result<()> {
        // One lock around replace-and-record: steps running side by side that read the same upstream
        // register it concurrently, and an unguarded deregister/register pair lets the second
        // `register_table` fail with "table already exists".
        let mut registered = self.registered.lock().expect("registered lock");
        // Two readers of one upstream that start together both find it unregistered; the second must
        // not replace the first's registration: between its deregister and register the first may be
        // planning its query, and would not find the table.
        if registered.get(key) == Some(&version) {
            return Ok(());
        }
        let name = TableReference::bare(key.as_str());
        let _ = self.session.deregister_table(name.clone());
        self.session.register_table(name, provider)?;
        registered.insert(key.clone(), version);
        Ok(())
    }
}

enum AttemptError {
    Failed(StepError),
    /// The kind parked the step until a signal.
    Parked(String),
    Cancelled,
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

impl Engine {
    /// Plans and executes a selection: [`submit`](Engine::submit), then [`execute`](Engine::execute) in
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
        for r in self.recover_interrupted_runs().await? {
            tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
        }
        let run = self.store.get_run(run_id.as_str()).await?;
        let planned = self.store.steps(run_id).await?;
        let order: Vec<StepKey> = planned.iter().map(StepRecord::step_key).collect();
        // A resumed run keeps what its earlier executions finished; parked steps stay parked until
        // signalled (then they are pending again).
        let done: HashMap<StepKey, StepStatus> = planned
            .iter()
            .filter(|s| s.status != StepStatus::Pending)
            .map(|s| (s.step_key(), s.status))
            .collect();
        // Only a run that parked steps before (it is `waiting`) has signals to hand them.
        let signals = if run.status == RunStatus::Waiting {
            self.signals(run_id).await?
        } else {
            HashMap::new()
        };
        if let Some(gone) = order
            .iter()
            .find(|k| !self.project.assets.contains_key(&k.asset))
        {
            return Err(crate::error::DefinitionError::new(
                "E0406",
                format!("run {run_id} plans '{gone}', which this project no longer defines"),
            )
            .hint("submit a new run")
            .into());
        }
        let (pid, host) = (std::process::id() as i64, crate::store::host_name());
        let ev = NewEvent::of(
            run_id,
            None,
            "run started",
            &Event::RunStarted {
                pid,
                host: host.clone(),
            },
        );
        let lease = crate::store::RunLease {
            pid,
            owner: format!("{host}:{pid}:{run_id}"),
            host,
            lease_until_ms: self.clock.now_ms() + claim::LEASE.as_millis() as i64,
        };
        let taken = self.store.start_run(run_id, &lease, ev).await?;
        if !taken {
            return Err(crate::error::DefinitionError::new(
                "E0407",
                format!(
                    "run {run_id} is {}, not queued: it is being or was executed",
                    run.status
                ),
            )
            .hint("`assets runs` shows queued runs")
            .into());
        }
        let run_span = tracing::info_span!("run", run_id = %run_id);
        if let Some(o) = &opts.observer {
            o.planned(run_id, &order);
        }
        let concurrency = opts
            .concurrency
            .unwrap_or(self.project.config.settings.concurrency)
            .max(1);
        tracing::info!(parent: &run_span, steps = order.len(), concurrency, "run started");
        let config = SessionConfig::new().with_target_partitions(concurrency.clamp(1, 4));
        // The caller's token (Ctrl-C) or a request in the store (`assets cancel`, the UI) cancels.
        let cancel = opts.cancel.child_token();
        let _cancel_watch = self.watch_run_cancel(run_id, cancel.clone());
        let state = Arc::new(RunState {
            run_id: run_id.clone(),
            force: run.force,
            full_refresh: run.full_refresh,
            cancel: cancel.clone(),
            observer: opts.observer.clone(),
            latest: Mutex::new(self.store.latest_materializations().await?),
            registered: Mutex::new(HashMap::new()),
            session: crate::session::bounded(&self.project.config, config),
            owner: lease.owner.clone(),
            no_wait: opts.no_wait,
            signals,
            claims: Arc::default(),
            store_failed: Default::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
        });
        let heartbeat = self.heartbeat(state.owner.clone(), state.claims.clone());
        let reports = match self
            .execute_plan(&order, &done, concurrency, &state)
            .instrument(run_span.clone())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Never leave the run `running` because this process failed (a full disk, a store
                // error): record why, as far as the store still lets us; the next run settles the rest.
                let _ = std::fs::remove_dir_all(self.run_scratch(run_id));
                let error = format!("the executor failed: {e}");
                let ev = NewEvent::of(
                    run_id,
                    None,
                    error.clone(),
                    &Event::RunFailed {
                        error: Some(error.clone()),
                    },
                );
                if let Err(e2) = self
                    .record_run_end(run_id, RunStatus::Failed, Some(&error), ev)
                    .await
                {
                    tracing::error!("cannot record that run {run_id} failed: {e2}");
                }
                return Err(e);
            }
        };
        drop(heartbeat);
        let _ = std::fs::remove_dir_all(self.run_scratch(run_id));
        let failed = reports.values().any(|r| r.status == StepStatus::Failed);
        let cancelled =
            cancel.is_cancelled() || reports.values().any(|r| r.status == StepStatus::Cancelled);
        let error = failed.then(|| {
            let n = reports
                .values()
                .filter(|r| r.status == StepStatus::Failed)
                .count();
            format!("{n} step(s) failed")
        });
        let waiting = reports
            .values()
            .filter(|r| r.status == StepStatus::Waiting)
            .count();
        let (status, event, msg) = if cancelled {
            (
                RunStatus::Cancelled,
                Event::RunCancelled {},
                "run cancelled",
            )
        } else if waiting > 0 {
            let event = Event::RunWaiting { waiting };
            (RunStatus::Waiting, event, "run waiting for signals")
        } else if failed {
            let event = Event::RunFailed {
                error: error.clone(),
            };
            (RunStatus::Failed, event, "run failed")
        } else {
            (
                RunStatus::Succeeded,
                Event::RunSucceeded {},
                "run succeeded",
            )
        };
        if state
            .store_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let why = "the run store could not record how some steps ended".to_string();
            self.settle_run_end(run_id, why, None).await?;
        } else {
            self.record_run_end(
                run_id,
                status,
                error.as_deref(),
                NewEvent::of(run_id, None, msg, &event),
            )
            .await?;
        }
        tracing::info!(parent: &run_span, status = %status, "{msg}");
        // Steps behind a parked one have not run: they are reported pending.
        let steps = order
            .iter()
            .map(|k| {
                reports
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| StepReport::new(k))
            })
            .collect();
        Ok(RunReport {
            run_id: run_id.clone(),
            status,
            steps,
            duration_ms: started.elapsed().as_millis(),
        })
    }
}
