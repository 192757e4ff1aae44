//! The daemon: one per project (a lock in the run store, renewed while it lives and taken over from a
//! dead holder), it evaluates the schedules at the clock's time and launches each due tick as a queued
//! run in the same transaction as the tick's record, then runs queued backfills and queued runs.
//! Everything reads time from the engine's clock, so tests drive a simulated week without sleeping.
//!
//! Automation conditions (`automation:` on assets) are decided in the same pass: the step keys whose
//! condition holds become one queued run, recorded as a tick of the `automation` pseudo-schedule.
//! Sensors (`sensors/*.yaml`) too: new objects under a prefix become a queued run (`sensor`).
//!
//! A schedule first seen by a daemon gets a `started` row at that time: ticks from then on are owed,
//! earlier ones are not. After downtime, `catch_up: skip` launches only the latest missed tick (its
//! reason says how many were skipped); `catch_up: all` launches each, oldest first.

mod automation;
mod sensors;
pub use automation::Evaluation;
pub use sensors::SensedObject;

use crate::error::{DefinitionError, EngineError};
use crate::instance::Instance;
use crate::key::RunId;
use crate::materialize::ExecuteOptions;
use crate::partitions::PartitionSelection;
use crate::schedule::{CatchUp, ScheduleDef, TickPartition, MAX_CATCH_UP};
use crate::store::{DaemonLock, RunStatus, TickRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the daemon lock holds without renewal.
pub const DAEMON_LEASE: Duration = Duration::from_secs(60);

/// What one pass of the daemon did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DaemonPass {
    /// Ticks recorded (launched or skipped).
    pub ticks: Vec<TickRecord>,
    /// Runs executed, with how they ended.
    pub runs: Vec<(RunId, RunStatus)>,
    /// Backfills run.
    pub backfills: Vec<String>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Instance {
    /// Takes (or renews) the project's daemon lock for `owner`. E0416 when a live daemon holds it.
    pub async fn take_daemon_lock(&self, owner: &str) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let lock = DaemonLock {
            owner: owner.to_string(),
            pid: std::process::id() as i64,
            host: crate::store::host_name(),
            lease_until_ms: now + DAEMON_LEASE.as_millis() as i64,
        };
        // A holder on this host whose process is gone is dead now, whatever its lease says.
        let dead = match self.store.daemon_lock().await? {
            Some(h) if h.host == lock.host && !crate::recovery::process_alive(h.pid) => {
                Some(h.owner)
            }
            _ => None,
        };
        match self
            .store
            .take_daemon_lock(&lock, now, dead.as_deref())
            .await?
        {
            Ok(()) => Ok(()),
            Err(holder) => Err(DefinitionError::new(
                "E0416",
                format!(
                    "a daemon already runs for this project: process {} on {} (lease until {})",
                    holder.pid,
                    holder.host,
                    chrono::DateTime::from_timestamp_millis(holder.lease_until_ms)
                        .map(stamp)
                        .unwrap_or_default()
                ),
            )
            .hint("stop it first (SIGTERM); a crashed daemon's lock is taken over once its lease runs out")
            .into()),
        }
    }

    /// Releases the daemon lock if `owner` holds it.
    pub async fn release_daemon_lock(&self, owner: &str) -> Result<(), EngineError> {
        Ok(self.store.release_daemon_lock(owner).await?)
    }

    /// Evaluates every schedule at the clock's time and records its due ticks, each with its queued
    /// run in one transaction. Returns the ticks recorded now (a tick recorded before, by this or an
    /// earlier daemon, is not recorded again).
    pub async fn evaluate_schedules(&self) -> Result<Vec<TickRecord>, EngineError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for s in &self.project.schedules {
            let Some(last) = self.store.last_tick(&s.name).await? else {
                let started = TickRecord {
                    schedule: s.name.clone(),
                    tick_at: stamp(now),
                    status: "started".into(),
                    run_id: None,
                    reason: Some("the daemon began evaluating this schedule".into()),
                    created_at: String::new(),
                };
                if self.store.record_tick(&started, None).await? {
                    out.push(started);
                }
                continue;
            };
            let last = DateTime::parse_from_rfc3339(&last)
                .map_err(|e| EngineError::Internal(format!("bad tick time '{last}': {e}")))?
                .with_timezone(&Utc);
            let due = s.ticks_between(last, now, MAX_CATCH_UP + 1);
            let (launch, skipped) = match s.catch_up {
                CatchUp::Skip => (
                    due.last().copied().into_iter().collect(),
                    due.len().saturating_sub(1),
                ),
                CatchUp::All => (due.into_iter().take(MAX_CATCH_UP).collect::<Vec<_>>(), 0),
            };
            for t in launch {
                if let Some(tick) = self.launch_tick(s, t, skipped, None).await? {
                    out.push(tick);
                }
            }
        }
        Ok(out)
    }

    /// Records the tick of `s` at `at` with a queued run planned as of `at` (a `latest` partition is
    /// the one that exists then). A selection with no partition yet records the tick as skipped.
    /// `fired_by`: a tick asked for now (`assets schedules fire`), recorded as `fired`, which the
    /// daemon's cursor ignores (the schedule's own ticks still come when due).
    async fn launch_tick(
        &self,
        s: &ScheduleDef,
        at: DateTime<Utc>,
        skipped: usize,
        fired_by: Option<&str>,
    ) -> Result<Option<TickRecord>, EngineError> {
        let partitions = match s.partition {
            TickPartition::All => PartitionSelection::All,
            TickPartition::Latest => PartitionSelection::Latest,
        };
        let selected = crate::plan::select_some(&self.project, s.selection.as_deref())?;
        let mut tick = TickRecord {
            schedule: s.name.clone(),
            // A fired tick is stamped to the millisecond, so it never takes a due tick's second.
            tick_at: match fired_by {
                Some(_) => at.to_rfc3339_opts(SecondsFormat::Millis, true),
                None => stamp(at),
            },
            status: if fired_by.is_some() {
                "fired"
            } else {
                "launched"
            }
            .into(),
            run_id: None,
            reason: match fired_by {
                Some(by) => Some(format!("fired by {by}")),
                None => (skipped > 0)
                    .then(|| format!("{skipped} missed tick(s) skipped (catch_up: skip)")),
            },
            created_at: String::new(),
        };
        let planned = match crate::plan::steps_in_order(&self.project, &selected, &partitions, at) {
            Ok(steps) => Some(self.planned_run_by(
                s.selection.as_deref(),
                false,
                &steps,
                &match fired_by {
                    Some(by) => format!("schedule:{} fired by {by}", s.name),
                    None => format!("schedule:{}", s.name),
                },
            )),
            // A fired tick stays `fired` (not the schedule's cursor), saying why nothing ran.
            Err(EngineError::Definition(e)) if e.0.iter().any(|d| d.code == "E0411") => {
                match fired_by {
                    Some(by) => tick.reason = Some(format!("fired by {by}; skipped: {e}")),
                    None => {
                        tick.status = "skipped".into();
                        tick.reason = Some(e.to_string());
                    }
                }
                None
            }
            Err(e) => return Err(e),
        };
        tick.run_id = planned.as_ref().map(|p| p.run.run_id.clone());
        let recorded = self.store.record_tick(&tick, planned.as_ref()).await?;
        Ok(recorded.then_some(tick))
    }

    /// The schedule named `name` (E0220 when there is none).
    fn schedule_named(&self, name: &str) -> Result<&crate::schedule::ScheduleDef, EngineError> {
        self.project
            .schedules
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                crate::error::DefinitionError::new(
                    "E0220",
                    format!("no schedule is named '{name}'"),
                )
                .hint("`assets schedules` lists them")
                .into()
            })
    }

    /// A tick of schedule `name` now, as if it were due (Dagster's "launch a run for this
    /// schedule"): recorded as `fired` with a queued run launched by `schedule:NAME`, planned as the
    /// schedule would plan it now. E0220 for an unknown schedule; the run id is in the tick.
    pub async fn fire_schedule(&self, name: &str) -> Result<TickRecord, EngineError> {
        let s = self.schedule_named(name)?;
        let by = self.launcher.clone();
        // Fired ticks are stamped to the millisecond: a second fire within one waits for the next.
        for _ in 0..20 {
            let at = self.clock.now();
            if let Some(tick) = self.launch_tick(s, at, 0, Some(&by)).await? {
                return Ok(tick);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        Err(EngineError::Internal(format!(
            "schedule '{name}' has a tick recorded at every millisecond just now; fire it again"
        )))
    }

    /// The next `count` ticks of schedule `name` after now, each with the steps it would run as
    /// planned at its time (a `latest` partition is the one that exists then). E0220 for an unknown
    /// schedule.
    pub async fn preview_schedule(
        &self,
        name: &str,
        count: usize,
    ) -> Result<Vec<(DateTime<Utc>, Result<Vec<crate::key::StepKey>, String>)>, EngineError> {
        let s = self.schedule_named(name)?;
        let partitions = match s.partition {
            TickPartition::All => PartitionSelection::All,
            TickPartition::Latest => PartitionSelection::Latest,
        };
        let selected = crate::plan::select_some(&self.project, s.selection.as_deref())?;
        let mut out = Vec::new();
        let mut after = self.clock.now();
        for _ in 0..count {
            let Some(at) = s.next_after(after) else { break };
            let steps = crate::plan::steps_in_order(&self.project, &selected, &partitions, at)
                .map_err(|e| e.to_string());
            out.push((at, steps));
            after = at;
        }
        Ok(out)
    }

    /// Requests one queued run of every step key whose automation condition holds now, recorded as a
    /// tick of the `automation` pseudo-schedule at this time.
    async fn launch_automation(&self) -> Result<Option<TickRecord>, EngineError> {
        let steps = self.automation_requests().await?;
        if steps.is_empty() {
            return Ok(None);
        }
        let planned = self.planned_run_by(None, true, &steps, "automation");
        let mut names: Vec<String> = steps.iter().take(5).map(|s| s.to_string()).collect();
        if steps.len() > 5 {
            names.push(format!("… {} more", steps.len() - 5));
        }
        let tick = TickRecord {
            schedule: "automation".into(),
            tick_at: stamp(self.clock.now()),
            status: "launched".into(),
            run_id: Some(planned.run.run_id.clone()),
            reason: Some(format!("conditions hold for {}", names.join(", "))),
            created_at: String::new(),
        };
        Ok(self
            .store
            .record_tick(&tick, Some(&planned))
            .await?
            .then_some(tick))
    }

    /// One pass of the daemon: evaluate schedules and automation conditions, run queued backfills (their
    /// chunks in order; an interrupted one is resumed), then execute queued runs (and signalled waiting
    /// ones) oldest first. Stops taking new work once `stop` fires.
    pub async fn daemon_pass(
        &self,
        opts: &ExecuteOptions,
        stop: &CancellationToken,
    ) -> Result<DaemonPass, EngineError> {
        // Dynamic partition keys added since the last pass (`partitions add`, sensors) count.
        let engine = self.refreshed().await?;
        let mut pass = DaemonPass {
            ticks: engine.evaluate_schedules().await?,
            ..Default::default()
        };
        pass.ticks.extend(engine.launch_automation().await?);
        pass.ticks.extend(engine.evaluate_sensors().await?);
        engine.refreshed().await?.run_queued(opts, stop, pass).await
    }

    /// The second half of a pass: queued backfills, then queued runs.
    async fn run_queued(
        &self,
        opts: &ExecuteOptions,
        stop: &CancellationToken,
        mut pass: DaemonPass,
    ) -> Result<DaemonPass, EngineError> {
        let mut of_backfills: HashSet<RunId> = HashSet::new();
        for b in self.store.list_backfills(1000).await? {
            let mut active = false;
            for (_, _, r) in self.store.backfill_runs(&b.backfill_id).await? {
                active |= r.status.is_active();
                of_backfills.insert(r.run_id);
            }
            if stop.is_cancelled() {
                return Ok(pass);
            }
            // Only a backfill with a queued or running run can be queued or interrupted: finished ones
            // are not read again every pass.
            if !active {
                continue;
            }
            let status = self.backfill_status(b.backfill_id.as_str()).await?;
            let id = b.backfill_id.as_str();
            match status.state {
                crate::BackfillState::Queued => {}
                // Its process died: settle what it left and carry on, as `backfill resume` would.
                crate::BackfillState::Interrupted => {
                    self.prepare_resume(id).await?;
                }
                _ => continue,
            }
            self.run_backfill(id, opts.clone()).await?;
            pass.backfills.push(b.backfill_id.to_string());
        }
        self.poll_parked().await?;
        // Queued runs, and waiting runs whose parked steps were signalled (workers' runs are theirs).
        let mut queued: Vec<RunId> = self
            .store
            .worker_runs(crate::store::WORKERS_OWNER)
            .await?
            .into_iter()
            .filter(|r| {
                matches!(r.status, RunStatus::Queued | RunStatus::Waiting)
                    && !of_backfills.contains(&r.run_id)
            })
            .map(|r| r.run_id)
            .collect();
        queued.sort();
        for run_id in queued {
            if stop.is_cancelled() {
                break;
            }
            match self.execute(&run_id, opts.clone()).await {
                Ok(report) => pass.runs.push((run_id, report.status)),
                // Another executor took it meanwhile.
                Err(EngineError::Definition(e)) if e.0.iter().any(|d| d.code == "E0407") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pass)
    }

    /// Signals each parked step whose kind waits on outside work ([`crate::kinds::AwaitsExternal`])
    /// once that work has ended, so this pass executes it and records the result. A kind that cannot
    /// tell (its service is down) leaves the step parked, with a warning.
    async fn poll_parked(&self) -> Result<(), EngineError> {
        let checkpoints = crate::store::StoreCheckpoints(self.store.clone());
        for run in self.store.waiting_runs().await? {
            for step in self.store.steps(&run.run_id).await? {
                if step.status != crate::store::StepStatus::Waiting {
                    continue;
                }
                let Some(spec) = self.project.assets.get(&step.asset_key) else {
                    continue;
                };
                let Some(awaits) = self
                    .kinds
                    .get(&spec.kind)
                    .and_then(|k| k.awaits_external(&spec.body))
                else {
                    continue;
                };
                match awaits
                    .ended(&run.run_id, &step.step_key(), &checkpoints)
                    .await
                {
                    Ok(true) => {
                        let payload = serde_json::json!({"external": "ended"});
                        self.signal(&run.run_id, &step.step_id, payload).await?;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(
                        run_id = %run.run_id,
                        step_id = %step.step_id,
                        "cannot tell whether the outside work of a parked step ended: {e}"
                    ),
                }
            }
        }
        Ok(())
    }

    /// Runs the daemon until `stop` fires (or after one pass when `once`): holds the lock (renewed
    /// every 20 s by its own task, also while a long run executes), runs a
    /// [`daemon_pass`](Self::daemon_pass) every `interval` of the clock, and releases the lock on the
    /// way out. `on_pass` sees each pass.
    pub async fn run_daemon(
        &self,
        interval: Duration,
        opts: ExecuteOptions,
        stop: CancellationToken,
        once: bool,
        on_pass: impl Fn(&DaemonPass),
    ) -> Result<(), EngineError> {
        let owner = format!(
            "{}:{}:{}",
            crate::store::host_name(),
            std::process::id(),
            self.clock.now_ms()
        );
        self.take_daemon_lock(&owner).await?;
        let renew = {
            let engine = self.clone();
            let owner = owner.clone();
            tokio::spawn(async move {
                loop {
                    engine.clock.sleep(DAEMON_LEASE / 3).await;
                    if let Err(e) = engine.take_daemon_lock(&owner).await {
                        tracing::error!("the daemon lost its lock: {e}");
                        return;
                    }
                }
            })
        };
        let result = async {
            while !stop.is_cancelled() {
                let pass = self.daemon_pass(&opts, &stop).await?;
                on_pass(&pass);
                if once {
                    break;
                }
                tokio::select! {
                    _ = self.clock.sleep(interval) => {}
                    _ = stop.cancelled() => {}
                }
            }
            Ok::<_, EngineError>(())
        }
        .await;
        renew.abort();
        self.release_daemon_lock(&owner).await?;
        result
    }
}
