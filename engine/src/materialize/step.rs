//! One step from start to end: freshness check, attempts with retries (exponential backoff with
//! jitter), per-attempt timeout and cancellation, then the Delta commit and the record of the
//! materialization (the durability protocol).

use super::faults::{backoff, fault_point};
use super::stages::{declared_schema_holds, kind_checks};
use super::*;

/// What an attempt computed and staged: the files, what it read, its metadata, what the commit
/// replaces, and a merge's (inserted, updated, deleted) counts.
type Computed = (
    Staged,
    Vec<UpstreamRead>,
    (
        BTreeMap<String, serde_json::Value>,
        crate::column_lineage::ColumnLineage,
    ),
    WriteScope,
    Option<(i64, i64, i64)>,
);

impl Engine {
    /// Runs one step to its end state. Store failures end the step as failed.
    pub(super) async fn run_step(&self, state: &RunState, key: StepKey) -> StepReport {
        let started = Instant::now();
        let mut report = match self.run_step_inner(state, &key).await {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(target: "spine::outcome", "{msg}");
                let mut report = StepReport::new(&key);
                report.status = StepStatus::Failed;
                report.error = Some(msg.clone());
                if let Err(e) = self
                    .finish(
                        state,
                        &key,
                        (StepStatus::Failed, None),
                        Some(msg),
                        None,
                        None,
                    )
                    .await
                {
                    tracing::error!("cannot record that step {key} failed: {e}");
                    state
                        .store_failed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                report
            }
        };
        report.duration_ms = started.elapsed().as_millis();
        if let Some(o) = &state.observer {
            o.step_finished(&report);
        }
        report
    }

    pub(super) async fn run_step_inner(
        &self,
        state: &RunState,
        key: &StepKey,
    ) -> Result<StepReport, EngineError> {
        let spec = self.project.assets[&key.asset].clone();
        let step_id = key.to_string();
        let mut report = StepReport::new(key);
        // A source (not copied) is observed every time: whether it changed is what it finds out.
        if let Some(config) = self.in_place(&self.project.assets[&key.asset]) {
            return self.observe_step(state, &spec, key, config).await;
        }
        if !state.force {
            let fresh_in = {
                let latest = state.latest.lock().expect("latest lock");
                (freshness(&self.project, &spec, key, &latest) == Freshness::Fresh).then(|| {
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
        // Announced from here (waiting for a compute slot included) until the step ends, so a commit
        // of this table lingers for it and they share one (see `warehouse::partitioned`).
        let _intent = (spec.partitions.is_some() && key.partition.is_some())
            .then(|| self.warehouse.intend(&key.asset));
        let max_attempts = spec.retries + 1;
        for attempt in 1..=max_attempts {
            report.attempts = attempt;
            let ev = NewEvent::of(
                &state.run_id,
                Some(&step_id),
                format!("{key} attempt {attempt}/{max_attempts} started"),
                &Event::StepStarted {
                    attempt,
                    max_attempts,
                },
            );
            // A compute slot, released once the output is staged (see `RunState::slots`).
            let slot = tokio::select! {
                s = state.slots.clone().acquire_owned() => s.map_err(|_| EngineError::Internal("compute slots closed".into()))?,
                _ = state.cancel.cancelled() => {
                    let reason = Some("run cancelled before the step started".to_string());
                    return self.end_step(state, report, StepStatus::Cancelled, None, reason).await;
                }
            };
            let started = match self.start_claimed(state, key, attempt, ev).await? {
                Ok(started) => started,
                Err(ended) => return Ok(ended),
            };
            let seq = started.seq;
            if attempt == 1 {
                if let Some(ended) = self.done_elsewhere(state, &spec, key, started).await? {
                    return Ok(ended);
                }
            }
            tracing::info!(attempt, seq, "step started");
            if let Some(o) = &state.observer {
                o.step_started(key, attempt);
            }
            let result = self
                .attempt(state, &spec, key, (attempt, seq), kind.as_ref(), slot)
                .await;
            match result {
                Ok(m) if !m.published => {
                    return self.end_unpublished(state, key, report, m).await;
                }
                Ok(m) => {
                    report.rows = Some(m.row_count);
                    report.delta_version = Some(m.delta_version);
                    self.record_success(state, key, m).await?;
                    tracing::info!(
                        rows = report.rows,
                        delta_version = report.delta_version,
                        "step succeeded"
                    );
                    report.status = StepStatus::Succeeded;
                    return Ok(report);
                }
                Err(AttemptError::Parked(reason)) => {
                    tracing::info!(target: "spine::outcome", "step parked: {reason}");
                    return self
                        .end_step(state, report, StepStatus::Waiting, None, Some(reason))
                        .await;
                }
                Err(AttemptError::Cancelled) => {
                    let reason = Some("cancelled while running".to_string());
                    return self
                        .end_step(state, report, StepStatus::Cancelled, None, reason)
                        .await;
                }
                Err(AttemptError::Failed(e))
                    if attempt < max_attempts && e.class == FailureClass::Retryable =>
                {
                    let msg = e.message;
                    let delay = backoff(spec.retry_delay, attempt, state.run_id.as_str());
                    tracing::warn!(target: "spine::outcome", attempt, "attempt failed, retrying in {:?}: {msg}", delay);
                    let event = Event::StepAttemptFailed {
                        attempt,
                        error: msg.clone(),
                        retry_in_ms: delay.as_millis() as u64,
                    };
                    let ev = NewEvent::of(
                        &state.run_id,
                        Some(&step_id),
                        format!(
                            "attempt {attempt} failed (retrying in {:.1}s): {msg}",
                            delay.as_secs_f64()
                        ),
                        &event,
                    );
                    self.store
                        .attempt_failed(&state.run_id, &step_id, &msg, ev)
                        .await?;
                    tokio::select! {
                        _ = self.clock.sleep(delay) => {}
                        _ = state.cancel.cancelled() => {
                            let reason = Some("cancelled while waiting to retry".to_string());
                            return self.end_step(state, report, StepStatus::Cancelled, Some(msg), reason).await;
                        }
                    }
                }
                Err(AttemptError::Failed(e)) => {
                    let class = e.class;
                    tracing::error!(target: "spine::outcome", attempt, class = class.as_str(), "step failed: {}", e.message);
                    report.failure_class = Some(class);
                    return self
                        .end_step(state, report, StepStatus::Failed, Some(e.message), None)
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
    pub(super) async fn attempt(
        &self,
        state: &RunState,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
        (attempt, seq): (u32, i64),
        kind: &dyn crate::kinds::AssetKind,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<NewMaterialization, AttemptError> {
        let key = &spec.key;
        let step_id = step.to_string();
        // A partition of a partitioned asset replaces only its own rows; an incremental asset
        // appends to its published table.
        let base = self.incremental_base(state, spec, step);
        let mut scope = match (&spec.partitions, &step.partition) {
            (Some(def), Some(p)) => WriteScope::Partition {
                key: p.clone(),
                values: def.values(p),
            },
            _ if base.is_some() => WriteScope::Append,
            _ => WriteScope::Table,
        };
        let scratch = self.run_scratch(&state.run_id).join(format!(
            "{}-{attempt}",
            step_id.replace(['/', '[', ']', '|'], "__")
        ));
        let compute = async {
            let (session, upstream, reads) = self.register_upstreams(state, spec, step).await?;
            let watermark = match (spec.incremental.as_ref().and_then(|i| i.watermark()), &base) {
                (Some(column), Some(b)) => {
                    Some(self.watermark(key, b.m.delta_version, column).await?)
                }
                _ => None,
            };
            let ctx = StepContext {
                run_id: state.run_id.clone(),
                step_id: step_id.clone(),
                attempt,
                spec: spec.clone(),
                partition: step.partition.clone(),
                project_root: self.project.config.root.clone(),
                session,
                upstream,
                scratch: scratch.clone(),
                events: crate::kinds::EventSink::new(
                    Arc::new(crate::store::StoreEvents(self.store.clone())),
                    state.run_id.clone(),
                    step_id.clone(),
                )
                .with_spill(self.step_log_file(&state.run_id, &step_id, attempt)),
                signal: state.signals.get(&step_id).cloned(),
                watermark,
                warehouse: Arc::new(self.warehouse.clone()),
            };
            let output = kind.execute(&ctx).await;
            // The step's last log lines are stored whether it succeeded or not.
            ctx.events.finish().await;
            let output = output?;
            if let StepData::Waiting { reason } = output.data {
                return Ok(Err(reason));
            }
            let StepOutput {
                data,
                metadata,
                checks,
                mut columns,
            } = output;
            if columns.is_empty() {
                columns = spec.declared_columns.clone();
            }
            kind_checks(&ctx.events, &checks).await?;
            let mut stream = self.to_stream(data).await?;
            declared_schema_holds(spec, &stream.schema())?;
            let mut counts = None;
            if let Some(crate::project::Incremental::Merge {
                unique_key, delete, ..
            }) = &spec.incremental
            {
                let m = self
                    .merge(key, (unique_key, delete.as_deref()), base.as_ref(), stream)
                    .await?;
                stream = m.stream;
                scope = match m.remove {
                    Some(remove) => WriteScope::Merge { remove },
                    None => WriteScope::Table,
                };
                counts = Some(m.counts);
            }
            let staged = self
                .warehouse
                .stage(key, stream, &scope)
                .await
                .map_err(|e| match e {
                    // The data stream failed while it was written: class it by its cause.
                    crate::error::WarehouseError::DataFusion(d) => {
                        StepError::datafusion("computing the data", &d)
                    }
                    other => StepError::retryable(other),
                })?;
            Ok::<_, StepError>(Ok((staged, reads, (metadata, columns), scope, counts)))
        };
        let timed = async {
            match spec.timeout {
                Some(t) => tokio::time::timeout(t, compute).await.unwrap_or_else(|_| {
                    Err(StepError::retryable(format!(
                        "timed out after {}",
                        humantime(t)
                    )))
                }),
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
        let (staged, reads, (mut metadata, columns), scope, counts): Computed = result
            .map_err(AttemptError::Failed)?
            .map_err(AttemptError::Parked)?;
        // A partition's step frees its compute slot while its commit waits to be grouped with its
        // siblings'; a whole table's step keeps it to the end (`-c 1` runs one step at a time).
        let _slot = match scope {
            WriteScope::Partition { .. } => {
                drop(slot);
                None
            }
            WriteScope::Table | WriteScope::Append | WriteScope::Merge { .. } => Some(slot),
        };
        if state.claims.lost(step) {
            return Err(AttemptError::Failed(StepError::retryable(format!(
                "this run's claim on {step} expired and another run took it over; not committing"
            ))));
        }
        if let Some(refused) = super::audit::unreadable_output(key, &staged.schema) {
            return Err(AttemptError::Failed(refused));
        }
        let schema_json = schema_json(&staged.schema);
        let previous = state
            .latest
            .lock()
            .expect("latest lock")
            .get(step)
            .map(|m| m.m.schema.clone());
        if let Some(previous) = previous {
            let problems =
                super::schema_change::conflicts(&previous, &schema_json, spec.on_schema_change);
            if !problems.is_empty() {
                return Err(AttemptError::Failed(StepError::permanent(format!(
                    "schema change refused (on_schema_change: {}): {}; nothing was committed — set \
                     on_schema_change: evolve (added columns and widened types) or overwrite (any schema; \
                     downstream assets must still read it) on '{key}'",
                    spec.on_schema_change.as_str(),
                    problems.join("; ")
                ))));
            }
        }
        // An appended or merged version: the table's row count and a chained data version.
        if let Some((inserted, updated, deleted)) = counts {
            metadata.insert("inserted".into(), inserted.into());
            metadata.insert("updated".into(), updated.into());
            metadata.insert("deleted".into(), deleted.into());
            if let Some(crate::project::Incremental::Merge { unique_key, .. }) = &spec.incremental {
                metadata.insert("merge_key".into(), serde_json::json!(unique_key));
            }
        }
        let (rows, data_version) = match (&base, counts) {
            (Some(b), Some(counts)) => super::merge::merged(b, &staged, counts),
            (Some(b), None) => {
                metadata.insert("inserted".into(), staged.row_count.into());
                super::incremental::appended(b, &staged)
            }
            (None, _) => (staged.row_count, staged.data_version.clone()),
        };
        // Everything needed to record the materialization travels in the commit, so recovery after a
        // crash between commit and record can record it without recomputing.
        let info = crate::warehouse::CommitInfo {
            format: crate::warehouse::COMMIT_INFO_FORMAT,
            run_id: state.run_id.as_str().to_string(),
            step_id: step_id.clone(),
            seq,
            code_version: spec.code_version.clone(),
            upstream: reads.clone(),
            rows,
            data_version: data_version.clone(),
            schema: schema_json.clone(),
            metadata: serde_json::to_value(&metadata).unwrap_or_default(),
            columns: columns.clone(),
            description: spec.description.clone(),
            owners: spec.owners.clone(),
        }
        .to_json();
        // (Only a whole table: one partition's rows, or appended rows, are not the table.)
        let in_memory = staged
            .batches
            .clone()
            .filter(|_| step.partition.is_none() && base.is_none())
            .map(|b| (b, staged.schema.clone()));
        fault_point("crash_before_commit", key);
        let delta_version = self
            .warehouse
            .commit(
                key,
                staged,
                CommitMeta {
                    app_id: step_id.clone(),
                    seq,
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
        // Audit before publishing: the checks run on the committed version; a failed `error` check
        // keeps it unpublished (downstream keeps reading the last published version).
        let checks = self
            .audit(
                state,
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
                let _ = state.register(key, Arc::new(mem), delta_version);
            }
        }
        Ok(NewMaterialization {
            asset_key: key.clone(),
            partition_key: step.partition.clone(),
            run_id: state.run_id.clone(),
            step_id,
            seq,
            delta_version,
            row_count: rows,
            schema: schema_json,
            data_version,
            code_version: spec.code_version.clone(),
            upstream: reads,
            metadata: serde_json::Value::Object(metadata.into_iter().collect()),
            published,
            checks,
            columns,
        })
    }
}

fn humantime(d: Duration) -> String {
    if d.as_secs() >= 60 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
