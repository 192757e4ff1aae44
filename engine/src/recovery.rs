//! Recovery of interrupted runs (the process died: `kill -9`, OOM, power loss).
//!
//! A run is interrupted when it is still `running` in the store but its executor is gone: its lease ran
//! out (the executor renews it with its step claims every 20 s, wherever it runs), or — sooner, on this
//! host — its process no longer exists. One process settles it: the first to take it over in the store
//! (several may find it at once). For each of its steps that was `running`, the asset's Delta table
//! tells whether the attempt's commit landed: if the table's `txn` version for the asset equals the
//! step's sequence number and the commit carrying it names this run and step, the materialization is
//! recorded from the commit's own info — committed work is never redone. Otherwise the step is marked failed (its staged files are unreferenced). The run ends
//! as `failed` with an explanation; the next `materialize` recomputes only what is stale.

use crate::error::EngineError;
use crate::instance::Instance;
use crate::key::RunId;
use crate::store::{
    host_name, NewEvent, NewMaterialization, RunLease, RunRecord, RunStatus, StepOutcome,
    StepStatus,
};

/// How long a settling process holds an interrupted run it took over (settling takes well under a
/// second; if the settler dies too, another takes over after this).
const SETTLE_LEASE_MS: i64 = 60_000;
use spine_schemas::events::Event;

/// What recovery did for one interrupted run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recovered {
    /// The run.
    pub run_id: RunId,
    /// Steps whose commit had landed and were recorded without recomputation.
    pub recorded: Vec<String>,
    /// Steps that had not committed and were marked failed.
    pub abandoned: Vec<String>,
}

pub(crate) fn process_alive(pid: i64) -> bool {
    if pid == std::process::id() as i64 {
        return true;
    }
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // cannot tell: never take over a run we cannot prove dead
    }
}

/// Whether `run` is running without an executor at `now_ms`: its lease ran out, or it belongs to a
/// process on this host that no longer exists.
pub fn is_interrupted(run: &RunRecord, now_ms: i64) -> bool {
    if run.status != RunStatus::Running && run.status != RunStatus::Queued {
        return false;
    }
    // Workers re-claim a dead worker's steps one by one; the run itself has no process to lose.
    if matches!(
        run.owner.as_deref(),
        Some(crate::store::WORKERS_OWNER | crate::store::QUEUE_OWNER)
    ) {
        return false;
    }
    if run.status == RunStatus::Running && run.lease_until_ms.is_some_and(|l| l < now_ms) {
        return true;
    }
    match (&run.host, run.pid) {
        (Some(h), Some(pid)) => *h == host_name() && !process_alive(pid),
        _ => false,
    }
}

impl Instance {
    /// Finds runs whose process died and settles them (see the module docs).
    pub async fn recover_interrupted_runs(&self) -> Result<Vec<Recovered>, EngineError> {
        let mut out = Vec::new();
        for run in self.store.active_runs().await? {
            if !is_interrupted(&run, self.clock.now_ms()) {
                continue;
            }
            // Several processes may find the same dead run at once (two `materialize`, a daemon and a
            // `backfill resume`): only the one that takes it over settles it, so its commits are
            // recorded once.
            let pid = std::process::id() as i64;
            let host = host_name();
            let lease = RunLease {
                owner: format!("{host}:{pid}:settle:{}", run.run_id),
                pid,
                host,
                lease_until_ms: self.clock.now_ms() + SETTLE_LEASE_MS,
            };
            if !self.store.take_over_run(&run, &lease).await? {
                tracing::info!(run_id = %run.run_id, "another process is settling this interrupted run");
                continue;
            }
            out.push(self.recover_run(&run, None).await?);
        }
        Ok(out)
    }

    /// Settles `run`: each unfinished step is recorded from its Delta commit if it landed, else failed;
    /// the run ends failed, `why` (default: its executor is gone) saying why it was not finished.
    pub(crate) async fn recover_run(
        &self,
        run: &RunRecord,
        why: Option<String>,
    ) -> Result<Recovered, EngineError> {
        let mut rec = Recovered {
            run_id: run.run_id.clone(),
            recorded: Vec::new(),
            abandoned: Vec::new(),
        };
        for step in self.store.steps(&run.run_id).await? {
            if step.status.is_terminal() {
                continue;
            }
            let outcome = match self.landed_outcome(&run.run_id, &step).await? {
                Some(o) => {
                    rec.recorded.push(step.step_id.clone());
                    o
                }
                None => {
                    // Settled by its own executor (the store failed), or after its process died.
                    let ended = match &why {
                        Some(_) => "the run store failed",
                        None => "interrupted: the process died",
                    };
                    let (status, msg) = if step.status == StepStatus::Running {
                        rec.abandoned.push(step.step_id.clone());
                        let msg = format!("{ended} before this step committed");
                        (StepStatus::Failed, msg)
                    } else {
                        let msg = format!("{ended} before this step started");
                        (StepStatus::Cancelled, msg)
                    };
                    // The process died: another attempt may well succeed.
                    let class = (status == StepStatus::Failed).then(|| "retryable".to_string());
                    let event = if status == StepStatus::Failed {
                        Event::StepFailed {
                            error: msg.clone(),
                            class: class.clone(),
                        }
                    } else {
                        Event::StepCancelled {
                            reason: msg.clone(),
                        }
                    };
                    let ev = NewEvent::of(
                        &run.run_id,
                        Some(&step.step_id),
                        format!("{}: {msg}", step.asset_key),
                        &event,
                    );
                    StepOutcome {
                        failure_class: class,
                        status,
                        error: (status == StepStatus::Failed).then(|| msg.clone()),
                        reason: Some(msg),
                        materialization: None,
                        events: vec![ev],
                    }
                }
            };
            self.store
                .finish_step(&run.run_id, &step.step_key(), outcome)
                .await?;
        }
        let msg = format!(
            "interrupted: {}; {} committed step(s) recorded, {} step(s) abandoned",
            why.unwrap_or_else(|| executor_gone(run, self.clock.now_ms())),
            rec.recorded.len(),
            rec.abandoned.len()
        );
        tracing::warn!(run_id = %run.run_id, "{msg}");
        // Its step claims would otherwise hold other runs back until their leases expire.
        self.store.release_run_claims(&run.run_id).await?;
        // A command's own children outlive a `kill -9` of Spine (only the command itself dies with it).
        let ended = end_leftover_processes(&run.run_id);
        if ended > 0 {
            tracing::warn!(run_id = %run.run_id, "ended {ended} process(es) the interrupted run's commands had started");
        }
        // Whatever the dead process staged there is unreferenced.
        let scratch = self.run_scratch(&run.run_id);
        if scratch.exists() {
            if let Err(e) = std::fs::remove_dir_all(&scratch) {
                tracing::warn!(run_id = %run.run_id, "cannot remove {}: {e}", scratch.display());
            }
        }
        let event = Event::RunFailed {
            error: Some(msg.clone()),
        };
        let ev = NewEvent::of(&run.run_id, None, msg.clone(), &event);
        self.store
            .set_run_status(&run.run_id, RunStatus::Failed, Some(&msg), ev)
            .await?;
        Ok(rec)
    }
}

impl Instance {
    /// How step `step` of run `run_id` ended if its attempt's commit landed in the warehouse (its
    /// `txn` version is the step's sequence number and the commit names the run and step): recorded
    /// from the commit's own info (audited first), or not recorded when another run recorded a newer
    /// one meanwhile. `None` when it did not land: the attempt must be redone or abandoned.
    pub(crate) async fn landed_outcome(
        &self,
        run_id: &RunId,
        step: &crate::store::StepRecord,
    ) -> Result<Option<StepOutcome>, EngineError> {
        let key = step.asset_key.clone();
        let committed = match step.seq {
            Some(seq) if step.status == StepStatus::Running => self
                .warehouse
                .find_commit(&key, &step.step_id, seq, run_id.as_str())
                .await?
                .map(|c| (seq, c)),
            _ => None,
        };
        // A newer commit of the step key that another run recorded meanwhile supersedes this
        // one: recording this one now would make the older version the latest.
        let newer = match &committed {
            Some((_, (v, _))) => self
                .store
                .latest_materialization(&step.step_key())
                .await?
                .filter(|n| n.m.delta_version > *v && n.m.run_id != *run_id),
            None => None,
        };
        let outcome = match committed {
            None => return Ok(None),
            Some((_, (delta_version, _))) if newer.is_some() => {
                let by = newer.map(|n| n.m.run_id).unwrap_or_else(|| run_id.clone());
                let msg = format!(
                    "{key}: its commit (Delta version {delta_version}) landed before the process \
                     died, and run {by} has recorded a newer one since; not recorded"
                );
                let ev = NewEvent::of(
                    run_id,
                    Some(&step.step_id),
                    msg.clone(),
                    &Event::Log {
                        level: "warn".into(),
                    },
                );
                StepOutcome {
                    failure_class: None,
                    status: StepStatus::Succeeded,
                    error: None,
                    reason: Some(msg),
                    materialization: None,
                    events: vec![ev],
                }
            }
            Some((seq, (delta_version, info))) => {
                let m = materialization_from_commit(
                    &step.step_key(),
                    (run_id, &step.step_id),
                    seq,
                    delta_version,
                    &info,
                );
                // Its checks may not have run (or not all): they run now, on the landed
                // version, and decide whether it is published, as they would have.
                let m = self.audit_recovered(&step.step_key(), m).await?;
                if !m.published {
                    let msg = format!(
                        "recovered {key}: its commit (Delta version {}) landed before the process \
                         died; check failed: {}; it is kept unpublished",
                        m.delta_version,
                        crate::checks::CheckOutcome::blocking(&m.checks)
                    );
                    let ev = NewEvent::of(
                        run_id,
                        Some(&step.step_id),
                        msg.clone(),
                        &Event::StepFailed {
                            error: msg.clone(),
                            class: Some("permanent".into()),
                        },
                    );
                    return Ok(Some(StepOutcome {
                        // A failed check fails the same way again.
                        failure_class: Some("permanent".into()),
                        status: StepStatus::Failed,
                        error: Some(msg.clone()),
                        reason: Some(msg),
                        materialization: Some(m),
                        events: vec![ev],
                    }));
                }
                let event = Event::Materialization {
                    delta_version,
                    rows: m.row_count,
                    data_version: m.data_version.clone(),
                    code_version: m.code_version.clone(),
                    seq,
                    recovered: true,
                };
                let ev = NewEvent::of(
                    run_id,
                    Some(&step.step_id),
                    format!("recovered {key}: its commit (Delta version {delta_version}) landed before the process died"),
                    &event,
                );
                StepOutcome {
                    failure_class: None,
                    status: StepStatus::Succeeded,
                    error: None,
                    reason: Some("recovered after interruption".into()),
                    materialization: Some(m),
                    events: vec![ev],
                }
            }
        };
        Ok(Some(outcome))
    }

    /// Runs the asset's checks on a materialization recovery found committed but not recorded, and
    /// sets what they decide: its check outcomes, and published unless an `error` check failed.
    async fn audit_recovered(
        &self,
        step: &crate::key::StepKey,
        mut m: NewMaterialization,
    ) -> Result<NewMaterialization, EngineError> {
        let Some(spec) = self.project.assets.get(&step.asset) else {
            return Ok(m);
        };
        if spec.checks.is_empty() {
            return Ok(m);
        }
        let latest = self.store.latest_materializations().await?;
        let others = crate::checks::read_versions(&spec.checks, &latest);
        let previous = latest.get(step).map(|l| l.m.row_count);
        let outcomes = self
            .run_checks(
                &spec.checks,
                step,
                crate::checks::Checked::Version(m.delta_version),
                m.row_count,
                previous,
                &others,
            )
            .await;
        m.published = !outcomes.iter().any(|c| c.blocks());
        m.checks = outcomes;
        Ok(m)
    }
}

/// The materialization a Spine commit's info describes (written with every commit so that it can be
/// recorded without recomputing): `step` of run `run_id` at Delta `version`, published.
pub(crate) fn materialization_from_commit(
    step: &crate::key::StepKey,
    (run_id, step_id): (&RunId, &str),
    seq: i64,
    delta_version: i64,
    info: &crate::warehouse::CommitInfo,
) -> NewMaterialization {
    NewMaterialization {
        asset_key: step.asset.clone(),
        partition_key: step.partition.clone(),
        run_id: run_id.clone(),
        step_id: step_id.to_string(),
        seq,
        delta_version,
        row_count: info.rows,
        schema: info.schema.clone(),
        data_version: info.data_version.clone(),
        code_version: info.code_version.clone(),
        upstream: info.upstream.clone(),
        columns: info.columns.clone(),
        metadata: match &info.metadata {
            serde_json::Value::Null => serde_json::json!({}),
            m => m.clone(),
        },
        published: true,
        checks: Vec::new(),
    }
}

/// Why a run's executor counts as gone, for the run's error.
fn executor_gone(run: &RunRecord, now_ms: i64) -> String {
    let (pid, host) = (run.pid.unwrap_or(0), run.host.clone().unwrap_or_default());
    match run.lease_until_ms {
        Some(l) if l < now_ms => format!(
            "the lease of its executor (process {pid} on {host}) ran out {} s ago",
            (now_ms - l) / 1000
        ),
        _ => format!("process {pid} on {host} died"),
    }
}

/// Ends (SIGKILL) every process of this user that still carries `run_id` in its environment: each
/// command runs with `SPINE_RUN_ID`, and the programs it starts inherit it. Linux only (it reads
/// `/proc`); elsewhere nothing is done. Returns how many were signalled.
fn end_leftover_processes(run_id: &RunId) -> usize {
    if !cfg!(target_os = "linux") {
        return 0;
    }
    let needle = format!("SPINE_RUN_ID={}", run_id.as_str());
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut ended = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || pid <= 1 {
            continue;
        }
        // Unreadable for other users' processes, which are not ours to end.
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            // SAFETY: kill(2) has no memory effects; a pid that exited meanwhile just fails (ESRCH).
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                ended += 1;
            }
        }
    }
    ended
}
