//! Materializing a selection: plan steps in dependency order, then execute them with bounded
//! concurrency, retries with exponential backoff and jitter, per-attempt timeouts and cancellation.
//!
//! Each step follows the durability protocol: the run store records the attempt (and allocates its
//! sequence number) before any work; data files are staged invisibly; one Delta commit carrying the
//! `txn` (asset key, sequence number) makes them visible; then the materialization is recorded. A
//! cancelled or timed-out step stops before its commit, so tables never hold half a result.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::hash::short_hash;
use crate::key::{AssetKey, RunId};
use crate::kinds::{StepContext, StepData, StepError, StepOutput, UpstreamInput};
use crate::selection::select;
use crate::staleness::{freshness, short, Freshness};
use crate::store::{
    now, Materialization, NewEvent, NewMaterialization, RunRecord, RunStatus, StepOutcome,
    StepRecord, StepStatus, UpstreamRead,
};
use crate::warehouse::{CommitMeta, Staged};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use spine_schemas::events::EventKind;
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
}

/// Progress callbacks (the CLI draws its progress bar from these).
pub trait RunObserver: Send + Sync {
    /// The plan is recorded.
    fn planned(&self, _run_id: &RunId, _steps: &[AssetKey]) {}
    /// An attempt starts.
    fn step_started(&self, _key: &AssetKey, _attempt: u32) {}
    /// A step ended.
    fn step_finished(&self, _report: &StepReport) {}
}

/// How one step ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// Asset.
    pub key: AssetKey,
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
    fn new(key: &AssetKey) -> Self {
        StepReport {
            key: key.clone(),
            status: StepStatus::Pending,
            attempts: 0,
            rows: None,
            delta_version: None,
            duration_ms: 0,
            error: None,
            reason: None,
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
    cancel: CancellationToken,
    observer: Option<Arc<dyn RunObserver>>,
    latest: Mutex<HashMap<AssetKey, Materialization>>,
    registered: Mutex<HashMap<AssetKey, i64>>,
    session: SessionContext,
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
        let name = TableReference::bare(key.as_str());
        let _ = self.session.deregister_table(name.clone());
        self.session.register_table(name, provider)?;
        registered.insert(key.clone(), version);
        Ok(())
    }
}

enum AttemptError {
    Failed(String),
    Cancelled,
}

impl Engine {
    /// Plans and executes a selection. Returns the report; the run's outcome is in `status`.
    pub async fn materialize(&self, req: MaterializeRequest) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let selected = select(&self.project, req.selection.as_deref())?;
        for r in self.recover_interrupted_runs().await? {
            tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
        }
        let order: Vec<AssetKey> = self
            .project
            .graph
            .topological_order()
            .ok_or_else(|| EngineError::Internal("validated graph has a cycle".into()))?
            .into_iter()
            .filter(|k| selected.contains(*k))
            .cloned()
            .collect();
        let run_id = RunId::new();
        let run_span = tracing::info_span!("run", run_id = %run_id);
        let record = RunRecord {
            run_id: run_id.clone(),
            status: RunStatus::Queued,
            selection: req.selection.clone(),
            force: req.force,
            created_at: now(),
            started_at: None,
            finished_at: None,
            error: None,
            pid: Some(std::process::id() as i64),
            host: Some(crate::store::host_name()),
        };
        let steps: Vec<StepRecord> = order
            .iter()
            .enumerate()
            .map(|(i, k)| StepRecord {
                run_id: run_id.clone(),
                step_id: k.to_string(),
                asset_key: k.clone(),
                position: i as i64,
                status: StepStatus::Pending,
                attempt: 0,
                seq: None,
                started_at: None,
                finished_at: None,
                error: None,
                reason: None,
            })
            .collect();
        self.store.create_run(&record, &steps).await?;
        if let Some(o) = &req.observer {
            o.planned(&run_id, &order);
        }
        self.store
            .set_run_status(
                &run_id,
                RunStatus::Running,
                None,
                NewEvent::new(&run_id, None, EventKind::RunStarted, "info", "run started"),
            )
            .await?;
        let concurrency = req
            .concurrency
            .unwrap_or(self.project.config.settings.concurrency)
            .max(1);
        tracing::info!(parent: &run_span, steps = order.len(), concurrency, "run started");
        let config = SessionConfig::new().with_target_partitions(concurrency.clamp(1, 4));
        let state = Arc::new(RunState {
            run_id: run_id.clone(),
            force: req.force,
            cancel: req.cancel.clone(),
            observer: req.observer.clone(),
            latest: Mutex::new(self.store.latest_materializations().await?),
            registered: Mutex::new(HashMap::new()),
            session: SessionContext::new_with_config(config),
        });
        let reports = self
            .execute_plan(&order, concurrency, &state)
            .instrument(run_span.clone())
            .await?;
        let _ = std::fs::remove_dir_all(
            self.project
                .config
                .root
                .join(".spine")
                .join("tmp")
                .join(run_id.as_str()),
        );
        let failed = reports.values().any(|r| r.status == StepStatus::Failed);
        let cancelled = req.cancel.is_cancelled()
            || reports.values().any(|r| r.status == StepStatus::Cancelled);
        let (status, kind, msg) = if cancelled {
            (
                RunStatus::Cancelled,
                EventKind::RunCancelled,
                "run cancelled",
            )
        } else if failed {
            (RunStatus::Failed, EventKind::RunFailed, "run failed")
        } else {
            (
                RunStatus::Succeeded,
                EventKind::RunSucceeded,
                "run succeeded",
            )
        };
        let error = failed.then(|| {
            let n = reports
                .values()
                .filter(|r| r.status == StepStatus::Failed)
                .count();
            format!("{n} step(s) failed")
        });
        self.store
            .set_run_status(
                &run_id,
                status,
                error.as_deref(),
                NewEvent::new(&run_id, None, kind, "info", msg),
            )
            .await?;
        tracing::info!(parent: &run_span, status = %status, "{msg}");
        let steps = order
            .iter()
            .filter_map(|k| reports.get(k).cloned())
            .collect();
        Ok(RunReport {
            run_id,
            status,
            steps,
            duration_ms: started.elapsed().as_millis(),
        })
    }

    async fn execute_plan(
        &self,
        order: &[AssetKey],
        concurrency: usize,
        state: &Arc<RunState>,
    ) -> Result<HashMap<AssetKey, StepReport>, EngineError> {
        let in_plan: HashSet<&AssetKey> = order.iter().collect();
        let mut remaining: HashMap<&AssetKey, usize> = order
            .iter()
            .map(|k| {
                (
                    k,
                    self.project.assets[k]
                        .deps
                        .iter()
                        .filter(|d| in_plan.contains(d))
                        .count(),
                )
            })
            .collect();
        let mut blocked: HashMap<&AssetKey, AssetKey> = HashMap::new();
        let mut ready: VecDeque<&AssetKey> = order.iter().filter(|k| remaining[k] == 0).collect();
        let mut reports: HashMap<AssetKey, StepReport> = HashMap::new();
        let mut running: JoinSet<StepReport> = JoinSet::new();
        let mut running_keys: HashMap<tokio::task::Id, AssetKey> = HashMap::new();
        loop {
            while running.len() < concurrency && !state.cancel.is_cancelled() {
                let Some(key) = ready.pop_front() else { break };
                let engine = self.clone();
                let st = state.clone();
                let k = key.clone();
                let span = tracing::info_span!("step", run_id = %state.run_id, step_id = %key, asset = %key);
                let handle =
                    running.spawn(async move { engine.run_step(&st, k).await }.instrument(span));
                running_keys.insert(handle.id(), key.clone());
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = running.join_next_with_id() => j,
                _ = state.cancel.cancelled(), if ready.iter().next().is_some() => {
                    // Stop launching; running steps observe the token themselves.
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let report = match joined {
                Ok((_, r)) => r,
                Err(e) => {
                    let key = running_keys
                        .get(&e.id())
                        .cloned()
                        .ok_or_else(|| EngineError::Internal("unknown task".into()))?;
                    let msg = format!("step panicked: {e}");
                    let report = StepReport::new(&key);
                    self.end_step(state, report, StepStatus::Failed, Some(msg), None)
                        .await?
                }
            };
            let ok = matches!(report.status, StepStatus::Succeeded | StepStatus::UpToDate);
            // Resolve downstream steps; skips cascade through a worklist.
            let mut work = vec![(report.key.clone(), ok)];
            reports.insert(report.key.clone(), report);
            while let Some((done, ok)) = work.pop() {
                for child in self.project.graph.downstream(&done) {
                    let Some(n) = remaining.get_mut(child) else {
                        continue;
                    };
                    *n -= 1;
                    if !ok {
                        blocked.entry(child).or_insert_with(|| done.clone());
                    }
                    if *n > 0 {
                        continue;
                    }
                    let Some((&child, _)) = remaining.get_key_value(child) else {
                        continue;
                    };
                    match blocked.get(child) {
                        Some(up) => {
                            let (status, reason) = if state.cancel.is_cancelled() {
                                (
                                    StepStatus::Cancelled,
                                    "run cancelled before the step started".to_string(),
                                )
                            } else {
                                (
                                    StepStatus::Skipped,
                                    format!("upstream '{up}' did not succeed"),
                                )
                            };
                            let r = self
                                .end_step(state, StepReport::new(child), status, None, Some(reason))
                                .await?;
                            if let Some(o) = &state.observer {
                                o.step_finished(&r);
                            }
                            reports.insert(child.clone(), r);
                            work.push((child.clone(), false));
                        }
                        None => ready.push_back(child),
                    }
                }
            }
        }
        // Whatever never started was cancelled.
        for key in order {
            if !reports.contains_key(key) {
                let r = self
                    .end_step(
                        state,
                        StepReport::new(key),
                        StepStatus::Cancelled,
                        None,
                        Some("run cancelled before the step started".into()),
                    )
                    .await?;
                reports.insert(key.clone(), r);
            }
        }
        Ok(reports)
    }

    /// Records how a step ended (no materialization) and returns its report filled in.
    async fn end_step(
        &self,
        state: &RunState,
        mut report: StepReport,
        status: StepStatus,
        error: Option<String>,
        reason: Option<String>,
    ) -> Result<StepReport, EngineError> {
        let key = report.key.clone();
        self.finish(state, &key, status, error.clone(), reason.clone(), None)
            .await?;
        report.status = status;
        report.error = error;
        report.reason = reason;
        Ok(report)
    }

    async fn finish(
        &self,
        state: &RunState,
        key: &AssetKey,
        status: StepStatus,
        error: Option<String>,
        reason: Option<String>,
        materialization: Option<NewMaterialization>,
    ) -> Result<Option<i64>, EngineError> {
        let (kind, level) = match status {
            StepStatus::Succeeded => (EventKind::Materialization, "info"),
            StepStatus::UpToDate => (EventKind::StepUpToDate, "info"),
            StepStatus::Failed => (EventKind::StepFailed, "error"),
            StepStatus::Skipped => (EventKind::StepSkipped, "warn"),
            _ => (EventKind::StepCancelled, "warn"),
        };
        let message = match (&materialization, &error, &reason) {
            (Some(m), _, _) => format!(
                "materialized {key}: {} rows, Delta version {}",
                m.row_count, m.delta_version
            ),
            (_, Some(e), _) => format!("{key} failed: {e}"),
            (_, _, Some(r)) => format!("{key} {}: {r}", status.as_str().replace('_', " ")),
            _ => format!("{key} {status}"),
        };
        let mut ev = NewEvent::new(&state.run_id, Some(key.as_str()), kind, level, message);
        if let Some(m) = &materialization {
            ev = ev.with_data(serde_json::json!({
                "delta_version": m.delta_version, "rows": m.row_count, "data_version": m.data_version,
                "code_version": m.code_version, "seq": m.seq,
            }));
        }
        let outcome = StepOutcome {
            status,
            error,
            reason,
            materialization,
            events: vec![ev],
        };
        Ok(self
            .store
            .finish_step(&state.run_id, key.as_str(), outcome)
            .await?)
    }

    /// Runs one step to its end state. Store failures end the step as failed.
    async fn run_step(&self, state: &RunState, key: AssetKey) -> StepReport {
        let started = Instant::now();
        let mut report = match self.run_step_inner(state, &key).await {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                tracing::error!("{msg}");
                let mut report = StepReport::new(&key);
                report.status = StepStatus::Failed;
                report.error = Some(msg.clone());
                let _ = self
                    .finish(state, &key, StepStatus::Failed, Some(msg), None, None)
                    .await;
                report
            }
        };
        report.duration_ms = started.elapsed().as_millis();
        if let Some(o) = &state.observer {
            o.step_finished(&report);
        }
        report
    }

    async fn run_step_inner(
        &self,
        state: &RunState,
        key: &AssetKey,
    ) -> Result<StepReport, EngineError> {
        let spec = self.project.assets[key].clone();
        let mut report = StepReport::new(key);
        if !state.force {
            let fresh_in = {
                let latest = state.latest.lock().expect("latest lock");
                (freshness(&spec, &latest) == Freshness::Fresh).then(|| {
                    latest
                        .get(key)
                        .map(|m| short(m.m.run_id.as_str()).to_string())
                })
            };
            if let Some(run) = fresh_in {
                let reason = format!("fresh (materialized in run {})", run.unwrap_or_default());
                return self
                    .end_step(state, report, StepStatus::UpToDate, None, Some(reason))
                    .await;
            }
        }
        let Some(kind) = self.kinds.get(&spec.kind).cloned() else {
            let msg = format!("no executor for kind '{}'", spec.kind);
            return self
                .end_step(state, report, StepStatus::Failed, Some(msg), None)
                .await;
        };
        let max_attempts = spec.retries + 1;
        for attempt in 1..=max_attempts {
            report.attempts = attempt;
            let ev = NewEvent::new(
                &state.run_id,
                Some(key.as_str()),
                EventKind::StepStarted,
                "info",
                format!("{key} attempt {attempt}/{max_attempts} started"),
            );
            let seq = self
                .store
                .start_step(&state.run_id, key.as_str(), key, attempt as i64, ev)
                .await?;
            tracing::info!(attempt, seq, "step started");
            if let Some(o) = &state.observer {
                o.step_started(key, attempt);
            }
            let result = self
                .attempt(state, &spec, attempt, seq, kind.as_ref())
                .await;
            match result {
                Ok(m) => {
                    report.rows = Some(m.row_count);
                    report.delta_version = Some(m.delta_version);
                    let id = self
                        .finish(
                            state,
                            key,
                            StepStatus::Succeeded,
                            None,
                            None,
                            Some(m.clone()),
                        )
                        .await?;
                    if let Some(id) = id {
                        let record = Materialization {
                            id,
                            created_at: now(),
                            m,
                        };
                        state
                            .latest
                            .lock()
                            .expect("latest lock")
                            .insert(key.clone(), record);
                    }
                    tracing::info!(
                        rows = report.rows,
                        delta_version = report.delta_version,
                        "step succeeded"
                    );
                    report.status = StepStatus::Succeeded;
                    return Ok(report);
                }
                Err(AttemptError::Cancelled) => {
                    let reason = Some("cancelled while running".to_string());
                    return self
                        .end_step(state, report, StepStatus::Cancelled, None, reason)
                        .await;
                }
                Err(AttemptError::Failed(msg)) if attempt < max_attempts => {
                    let delay = backoff(spec.retry_delay, attempt, state.run_id.as_str());
                    tracing::warn!(attempt, "attempt failed, retrying in {:?}: {msg}", delay);
                    let ev = NewEvent::new(
                        &state.run_id,
                        Some(key.as_str()),
                        EventKind::StepAttemptFailed,
                        "warn",
                        format!(
                            "attempt {attempt} failed (retrying in {:.1}s): {msg}",
                            delay.as_secs_f64()
                        ),
                    );
                    self.store
                        .attempt_failed(&state.run_id, key.as_str(), &msg, ev)
                        .await?;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = state.cancel.cancelled() => {
                            let reason = Some("cancelled while waiting to retry".to_string());
                            return self.end_step(state, report, StepStatus::Cancelled, Some(msg), reason).await;
                        }
                    }
                }
                Err(AttemptError::Failed(msg)) => {
                    tracing::error!(attempt, "step failed: {msg}");
                    return self
                        .end_step(state, report, StepStatus::Failed, Some(msg), None)
                        .await;
                }
            }
        }
        Err(EngineError::Internal(
            "retry loop ended without an outcome".into(),
        ))
    }

    /// One attempt: compute and stage under the timeout and the cancel token, then commit (not
    /// interruptible: a commit either lands whole or not at all).
    async fn attempt(
        &self,
        state: &RunState,
        spec: &crate::project::AssetSpec,
        attempt: u32,
        seq: i64,
        kind: &dyn crate::kinds::AssetKind,
    ) -> Result<NewMaterialization, AttemptError> {
        let key = &spec.key;
        let scratch = self
            .project
            .config
            .root
            .join(".spine")
            .join("tmp")
            .join(state.run_id.as_str())
            .join(format!("{}-{attempt}", key.as_str().replace('/', "__")));
        let compute = async {
            let (upstream, reads) = self.register_upstreams(state, spec).await?;
            let ctx = StepContext {
                run_id: state.run_id.clone(),
                step_id: key.to_string(),
                attempt,
                spec: spec.clone(),
                partition: None,
                project_root: self.project.config.root.clone(),
                session: state.session.clone(),
                upstream,
                scratch: scratch.clone(),
                events: crate::kinds::EventSink::new(
                    self.store.clone(),
                    state.run_id.clone(),
                    key.to_string(),
                ),
            };
            let output = kind.execute(&ctx).await.map_err(|StepError(m)| m)?;
            let StepOutput {
                data,
                metadata,
                checks,
            } = output;
            for c in &checks {
                let level = if c.passed {
                    "info"
                } else if c.severity == "error" {
                    "error"
                } else {
                    "warn"
                };
                let msg = format!(
                    "check {} {}{}",
                    c.name,
                    if c.passed { "passed" } else { "failed" },
                    c.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                ctx.events.emit(EventKind::CheckResult, level, &msg, Some(serde_json::json!({"name": c.name, "passed": c.passed, "severity": c.severity}))).await;
            }
            if let Some(c) = checks.iter().find(|c| !c.passed && c.severity == "error") {
                return Err(format!(
                    "check '{}' failed{}; nothing was committed",
                    c.name,
                    c.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ));
            }
            let stream = self.to_stream(data).await?;
            let staged = self
                .warehouse
                .stage(key, stream)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((staged, reads, metadata))
        };
        let timed = async {
            match spec.timeout {
                Some(t) => tokio::time::timeout(t, compute)
                    .await
                    .unwrap_or_else(|_| Err(format!("timed out after {}", humantime(t)))),
                None => compute.await,
            }
        };
        let result = tokio::select! {
            r = timed => r,
            _ = state.cancel.cancelled() => return Err(AttemptError::Cancelled),
        };
        if scratch.exists() {
            let _ = std::fs::remove_dir_all(&scratch);
        }
        let (staged, reads, metadata): (
            Staged,
            Vec<UpstreamRead>,
            BTreeMap<String, serde_json::Value>,
        ) = result.map_err(AttemptError::Failed)?;
        let schema_json = schema_json(&staged.schema);
        // Everything needed to record the materialization travels in the commit, so recovery after a
        // crash between commit and record can record it without recomputing.
        let info = serde_json::json!({
            "run_id": state.run_id.as_str(), "step_id": key.as_str(), "seq": seq,
            "code_version": spec.code_version, "upstream": reads, "rows": staged.row_count,
            "data_version": staged.data_version, "schema": schema_json, "metadata": metadata,
        });
        let (rows, data_version) = (staged.row_count, staged.data_version.clone());
        let in_memory = staged.batches.clone().map(|b| (b, staged.schema.clone()));
        let delta_version = self
            .warehouse
            .commit(
                key,
                staged,
                CommitMeta {
                    app_id: key.to_string(),
                    seq,
                    info,
                },
            )
            .await
            .map_err(|e| AttemptError::Failed(format!("Delta commit failed: {e}")))?;
        fault_point("crash_after_commit", key);
        if let Some((batches, schema)) = in_memory {
            // Downstream steps of this run read the committed rows from memory instead of re-reading.
            if let Ok(mem) = MemTable::try_new(schema, vec![batches]) {
                let _ = state.register(key, Arc::new(mem), delta_version);
            }
        }
        Ok(NewMaterialization {
            asset_key: key.clone(),
            partition_key: None,
            run_id: state.run_id.clone(),
            step_id: key.to_string(),
            seq,
            delta_version,
            row_count: rows,
            schema: schema_json,
            data_version,
            code_version: spec.code_version.clone(),
            upstream: reads,
            metadata: serde_json::Value::Object(metadata.into_iter().collect()),
        })
    }

    /// Registers each upstream in the run's session at its latest recorded version.
    async fn register_upstreams(
        &self,
        state: &RunState,
        spec: &crate::project::AssetSpec,
    ) -> Result<(Vec<UpstreamInput>, Vec<UpstreamRead>), String> {
        let mut inputs = Vec::new();
        let mut reads = Vec::new();
        for dep in &spec.deps {
            let latest = state.latest.lock().expect("latest lock").get(dep).cloned();
            let Some(m) = latest else {
                return Err(format!(
                    "upstream '{dep}' has never been materialized; include it in the selection (e.g. '+{}')",
                    spec.key
                ));
            };
            let version = m.m.delta_version;
            let already =
                state.registered.lock().expect("registered lock").get(dep) == Some(&version);
            if !already {
                let (provider, v) = self
                    .warehouse
                    .provider(dep, Some(version), &state.session)
                    .await
                    .map_err(|e| format!("cannot read upstream '{dep}': {e}"))?
                    .ok_or_else(|| format!("upstream '{dep}' is recorded as materialized but its Delta table is missing at {}", self.warehouse.table_url(dep).map(|u| u.to_string()).unwrap_or_default()))?;
                state
                    .register(dep, provider, v)
                    .map_err(|e| e.to_string())?;
            }
            inputs.push(UpstreamInput {
                key: dep.clone(),
                table_url: self.warehouse.table_url(dep).map_err(|e| e.to_string())?,
                delta_version: version,
            });
            reads.push(UpstreamRead {
                key: dep.clone(),
                materialization_id: Some(m.id),
                delta_version: Some(version),
            });
        }
        Ok((inputs, reads))
    }

    async fn to_stream(&self, data: StepData) -> Result<SendableRecordBatchStream, String> {
        match data {
            StepData::Stream(s) => Ok(s),
            StepData::Batches(batches) => {
                let Some(first) = batches.first() else {
                    return Err("the asset returned no record batches; return at least one (possibly empty) batch so the schema is known".into());
                };
                let schema = first.schema();
                if let Some(b) = batches.iter().find(|b| b.schema() != schema) {
                    return Err(format!(
                        "record batches disagree on schema: {:?} vs {:?}",
                        schema,
                        b.schema()
                    ));
                }
                let stream = futures::stream::iter(batches.into_iter().map(Ok));
                Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
            }
            StepData::Files { paths, format } => {
                let ctx = SessionContext::new();
                let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                let ext = |p: &str| {
                    p.rsplit_once('.')
                        .map(|(_, e)| format!(".{e}"))
                        .unwrap_or_default()
                };
                let first_ext = files.first().map(|f| ext(f)).unwrap_or_default();
                let df = match format.as_str() {
                    "parquet" => {
                        ctx.read_parquet(
                            files.clone(),
                            ParquetReadOptions::default().file_extension(&first_ext),
                        )
                        .await
                    }
                    "csv" => {
                        ctx.read_csv(
                            files.clone(),
                            CsvReadOptions::new().file_extension(&first_ext),
                        )
                        .await
                    }
                    "jsonl" => {
                        ctx.read_json(
                            files.clone(),
                            JsonReadOptions::default().file_extension(&first_ext),
                        )
                        .await
                    }
                    other => return Err(format!("unsupported output format '{other}'")),
                }
                .map_err(|e| {
                    format!(
                        "output files are not valid {format} ({}): {e}",
                        files.join(", ")
                    )
                })?;
                df.execute_stream()
                    .await
                    .map_err(|e| format!("cannot read output files as {format}: {e}"))
            }
        }
    }
}

/// Fault injection for crash tests: `SPINE_FAULT=crash_after_commit:<asset key>` aborts the process right
/// after that asset's Delta commit, before the run store records it (the window recovery must cover).
fn fault_point(name: &str, key: &AssetKey) {
    if let Ok(spec) = std::env::var("SPINE_FAULT") {
        if spec.split_once(':') == Some((name, key.as_str())) {
            eprintln!("SPINE_FAULT: aborting at {name} for {key}");
            std::process::abort();
        }
    }
}

/// Exponential backoff with ±50% jitter: `base * 2^(attempt-1) * (0.5..1.5)`, capped at 5 minutes.
pub fn backoff(base: Duration, attempt: u32, salt: &str) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt - 1).min(16));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let h = short_hash(format!("{salt}{attempt}{nanos}").as_bytes());
    let frac = u64::from_str_radix(&h[..8], 16).unwrap_or(0) as f64 / u32::MAX as f64;
    exp.mul_f64(0.5 + frac).min(Duration::from_secs(300))
}

fn humantime(d: Duration) -> String {
    if d.as_secs() >= 60 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// An Arrow schema as JSON: `[{"name":..,"type":..,"nullable":..}]`.
pub fn schema_json(schema: &arrow::datatypes::Schema) -> serde_json::Value {
    serde_json::Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
            .collect(),
    )
}
