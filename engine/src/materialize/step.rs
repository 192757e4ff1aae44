//! One step from start to end: freshness check, attempts with retries (exponential backoff with
//! jitter), per-attempt timeout and cancellation, then the Delta commit and the record of the
//! materialization (the durability protocol).

use super::faults::{backoff, fault_point};
use super::stages::{commit_info, materialization, output_policy, version_of};
use super::*;

impl Executor {
    /// Runs one step to its end. A store that fails under it is waited for and the step picked up
    /// again (`resume`); a store that stays away fails it.
    pub(super) async fn run_step(&self, key: StepKey) -> StepReport {
        self.run_step_from(key, 1).await
    }

    /// Runs one step from attempt `first` (above 1 when a worker re-claimed a dead owner's attempt
    /// `first - 1` that had not committed) to its end.
    pub(super) async fn run_step_from(&self, key: StepKey, first: u32) -> StepReport {
        let started = Instant::now();
        let mut report = match self.run_step_resuming(&key, first).await {
            Ok(r) => r,
            // Workers share the run: a store out of reach is no step failure. The step is left as
            // the store has it (its claim let go by the worker), to be re-claimed and reconciled.
            Err(EngineError::Store(e)) if self.run.shared => {
                tracing::warn!(
                    "{key}: the run store failed ({e}); the step is left to be re-claimed"
                );
                return StepReport::new(&key);
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(target: "spine::outcome", "{msg}");
                let mut report = StepReport::new(&key);
                report.status = StepStatus::Failed;
                report.error = Some(msg.clone());
                if let Err(e) = self
                    .finish(&key, (StepStatus::Failed, None), Some(msg), None, None)
                    .await
                {
                    tracing::error!("cannot record that step {key} failed: {e}");
                    self.run
                        .store_failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                report
            }
        };
        report.duration_ms = started.elapsed().as_millis();
        if let Some(o) = &self.run.observer {
            o.step_finished(&report);
        }
        report
    }

    pub(super) async fn run_step_inner(
        &self,
        key: &StepKey,
        first: u32,
    ) -> Result<StepReport, EngineError> {
        let spec = self.project.assets[&key.asset].clone();
        let step_id = key.to_string();
        let mut report = StepReport::new(key);
        // A source (not copied) is observed every time: whether it changed is what it finds out.
        if let Some(config) = self.in_place(&self.project.assets[&key.asset]) {
            return self.observe_step(&spec, key, config).await;
        }
        if !self.run.force && first == 1 {
            let fresh_in = {
                let latest = self.run.latest.lock().expect("latest lock");
                (freshness(&self.project, &spec, key, &latest) == Freshness::Fresh).then(|| {
                    latest
                        .get(key)
                        .map(|m| short(m.m.run_id.as_str()).to_string())
                })
            };
            if let Some(run) = fresh_in {
                let reason = format!("fresh (materialized in run {})", run.unwrap_or_default());
                return self
                    .end_step(report, StepStatus::UpToDate, None, Some(reason))
                    .await;
            }
        }
        let Some(kind) = self.kinds.get(&spec.kind).cloned() else {
            let msg = format!("no executor for kind '{}'", spec.kind);
            return self
                .end_step(report, StepStatus::Failed, Some(msg), None)
                .await;
        };
        // Announced from here (waiting for a compute slot included) until the step ends, so a commit
        // of this table lingers for it and they share one (see `warehouse::partitioned`).
        let _intent = (spec.partitions.is_some() && key.partition.is_some())
            .then(|| self.warehouse.intend(&key.asset));
        // A re-claimed step gets its retries afresh: its owner's death was not its failure.
        let max_attempts = first - 1 + spec.retries + 1;
        for attempt in first..=max_attempts {
            report.attempts = attempt;
            let ev = NewEvent::of(
                &self.run.run_id,
                Some(&step_id),
                format!("{key} attempt {attempt}/{max_attempts} started"),
                &Event::StepStarted {
                    attempt,
                    max_attempts,
                },
            );
            // A compute slot, released once the output is staged (see `RunState::slots`).
            let slot = tokio::select! {
                s = self.run.slots.clone().acquire_owned() => s.map_err(|_| EngineError::Internal("compute slots closed".into()))?,
                _ = self.run.cancel.cancelled() => {
                    let reason = Some("run cancelled before the step started".to_string());
                    return self.end_step(report, StepStatus::Cancelled, None, reason).await;
                }
            };
            let started = match self.start_claimed(key, attempt, ev).await? {
                Ok(started) => started,
                Err(ended) => return Ok(ended),
            };
            let seq = started.seq;
            if attempt == 1 {
                if let Some(ended) = self.done_elsewhere(&spec, key, started).await? {
                    return Ok(ended);
                }
            }
            tracing::info!(attempt, seq, "step started");
            if let Some(o) = &self.run.observer {
                o.step_started(key, attempt);
            }
            let result = self
                .attempt(&spec, key, (attempt, seq), kind.as_ref(), slot)
                .await;
            match result {
                Ok(m) if !m.published => {
                    return self.end_unpublished(key, report, m).await;
                }
                Ok(m) => {
                    report.rows = Some(m.row_count);
                    report.delta_version = Some(m.delta_version);
                    self.record_success(key, m).await?;
                    tracing::info!(
                        rows = report.rows,
                        delta_version = report.delta_version,
                        "step succeeded"
                    );
                    report.status = StepStatus::Succeeded;
                    return Ok(report);
                }
                Err(AttemptError::Store(e)) => return Err(EngineError::Store(e)),
                Err(AttemptError::Parked(reason)) => {
                    tracing::info!(target: "spine::outcome", "step parked: {reason}");
                    return self
                        .end_step(report, StepStatus::Waiting, None, Some(reason))
                        .await;
                }
                Err(AttemptError::Cancelled) => {
                    let reason = Some("cancelled while running".to_string());
                    return self
                        .end_step(report, StepStatus::Cancelled, None, reason)
                        .await;
                }
                Err(AttemptError::Failed(e))
                    if attempt < max_attempts && e.class == FailureClass::Retryable =>
                {
                    // What the failing party asked for (a rate limit's Retry-After) when the
                    // backoff would come back sooner.
                    let delay = backoff(spec.retry_delay, attempt, self.run.run_id.as_str())
                        .max(e.retry_after.unwrap_or_default());
                    let msg = e.message;
                    tracing::warn!(target: "spine::outcome", attempt, "attempt failed, retrying in {:?}: {msg}", delay);
                    let event = Event::StepAttemptFailed {
                        attempt,
                        error: msg.clone(),
                        retry_in_ms: delay.as_millis() as u64,
                    };
                    let ev = NewEvent::of(
                        &self.run.run_id,
                        Some(&step_id),
                        format!(
                            "attempt {attempt} failed (retrying in {:.1}s): {msg}",
                            delay.as_secs_f64()
                        ),
                        &event,
                    );
                    self.store
                        .attempt_failed(&self.run.run_id, key, &msg, ev)
                        .await?;
                    tokio::select! {
                        _ = self.clock.sleep(delay) => {}
                        _ = self.run.cancel.cancelled() => {
                            let reason = Some("cancelled while waiting to retry".to_string());
                            return self.end_step(report, StepStatus::Cancelled, Some(msg), reason).await;
                        }
                    }
                }
                Err(AttemptError::Failed(e)) => {
                    let class = e.class;
                    tracing::error!(target: "spine::outcome", attempt, class = class.as_str(), "step failed: {}", e.message);
                    report.failure_class = Some(class);
                    if e.stops_run {
                        // Steps not started yet are cancelled; the run ends failed, by this step.
                        report.stops_run = true;
                        self.run.cancel.cancel();
                    }
                    return self
                        .end_step(report, StepStatus::Failed, Some(e.message), None)
                        .await;
                }
            }
        }
        Err(EngineError::Internal(
            "retry loop ended without an outcome".into(),
        ))
    }

    /// One attempt, a pipeline of stages: compute (and stage, under the timeout and the cancel
    /// token), output policy, commit (not interruptible: a commit either lands whole or not at all),
    /// audit; the step's caller then records it.
    pub(super) async fn attempt(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
        (attempt, seq): (u32, i64),
        kind: &dyn crate::kinds::AssetKind,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<NewMaterialization, AttemptError> {
        let key = &spec.key;
        // A partition of a partitioned asset replaces only its own rows; an incremental asset
        // appends to its published table.
        let base = self.incremental_base(spec, step);
        let mut computed = self
            .compute(spec, step, attempt, kind, base.as_ref())
            .await?;
        // A partition's step frees its compute slot while its commit waits to be grouped with its
        // siblings'; a whole table's step keeps it to the end (`-c 1` runs one step at a time).
        let _slot = match computed.scope {
            WriteScope::Partition { .. } => {
                drop(slot);
                None
            }
            WriteScope::Table | WriteScope::Append | WriteScope::Merge { .. } => Some(slot),
        };
        if self.run.claims.lost(step) {
            return Err(AttemptError::Failed(StepError::retryable(format!(
                "this run's claim on {step} expired and another run took it over; not committing"
            ))));
        }
        if !self
            .run
            .claims
            .may_commit(self.clock.now_ms(), self.project.config.settings.lease)
        {
            return Err(AttemptError::Failed(StepError::retryable(format!(
                "the claim on {step} was last renewed more than half a lease ago (the run store \
                 is out of reach?); not committing, another owner may take it over"
            ))));
        }
        let previous = self
            .run
            .latest
            .lock()
            .expect("latest lock")
            .get(step)
            .map(|m| m.m.schema.clone());
        let schema_json = output_policy(spec, &computed.staged.schema, previous.as_ref())
            .map_err(AttemptError::Failed)?;
        let (rows, data_version) = version_of(spec, base.as_ref(), &mut computed);
        // (Only a whole table: one partition's rows, or appended rows, are not the table.)
        let in_memory = computed
            .staged
            .batches
            .clone()
            .filter(|_| step.partition.is_none() && base.is_none())
            .map(|b| (b, computed.staged.schema.clone()));
        let (m, staged) = materialization(
            spec,
            step,
            (&self.run.run_id, seq),
            schema_json,
            computed,
            (rows, data_version),
        );
        let delta_version = self.commit(spec, &m, staged).await?;
        // Audit before publishing: the checks run on the committed version; a failed `error` check
        // keeps it unpublished (downstream keeps reading the last published version).
        let checks = self
            .audit(
                spec,
                step,
                crate::checks::Checked::Version(delta_version),
                rows,
            )
            .await;
        let published = !checks.iter().any(|c| c.blocks());
        if let Some((batches, schema)) = in_memory.filter(|_| published) {
            // Downstream steps of this run read the committed rows from memory instead of re-reading.
            if let Ok(mem) = MemTable::try_new(schema, vec![batches]) {
                let _ = self.run.register(key, Arc::new(mem), delta_version);
            }
        }
        Ok(NewMaterialization {
            delta_version,
            published,
            checks,
            ..m
        })
    }

    /// Stage (commit): one Delta commit of the staged files carrying the `txn` (step id, sequence
    /// number) and everything needed to record `m` (so recovery after a crash between commit and
    /// record records it without recomputing); its Delta version. A conflicting concurrent commit is
    /// retryable, anything else permanent.
    async fn commit(
        &self,
        spec: &crate::project::AssetSpec,
        m: &NewMaterialization,
        (staged, scope): (Staged, WriteScope),
    ) -> Result<i64, AttemptError> {
        let key = &spec.key;
        let info = commit_info(m, spec).to_json();
        fault_point("crash_before_commit", key);
        let delta_version = self
            .warehouse
            .commit(
                key,
                staged,
                CommitMeta {
                    app_id: m.step_id.clone(),
                    seq: m.seq,
                    info,
                    scope,
                    table: TableMeta::of(
                        key,
                        spec.description.as_deref(),
                        &spec.owners,
                        &spec.code_version,
                    ),
                },
            )
            .await
            .map_err(|e| {
                let message = format!("Delta commit failed: {e}");
                AttemptError::Failed(if e.is_transient_commit_failure() {
                    StepError::retryable(message)
                } else {
                    StepError::permanent(message)
                })
            })?;
        fault_point("crash_after_commit", key);
        Ok(delta_version)
    }
}
