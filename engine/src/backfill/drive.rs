//! Executing a backfill: its queued runs one after the other in chunk order, stopping when it is
//! cancelled (from any process) or this process is interrupted; resuming it after a crash, a failure or
//! a cancel.

use super::BackfillStatus;
use crate::error::{DefinitionError, EngineError};
use crate::instance::Instance;
use crate::materialize::ExecuteOptions;
use crate::store::RunStatus;
use std::time::Duration;

/// How often a running backfill looks for a cancel asked by another process.
const CANCEL_POLL: Duration = Duration::from_millis(500);

impl Instance {
    /// Executes a backfill's queued runs in chunk order in this process (`opts` applies to each run;
    /// the backfill's own concurrency when `opts` names none) and returns its status afterwards. Stops
    /// after the current run when the backfill is cancelled or `opts.cancel` fires. E0415 when another
    /// live process is running it.
    pub async fn run_backfill(
        &self,
        id: &str,
        opts: ExecuteOptions,
    ) -> Result<BackfillStatus, EngineError> {
        let record = self.store.get_backfill(id).await?;
        let id = record.backfill_id.clone();
        let latest = self.latest_chunk_runs(&id).await?;
        self.refuse_if_running(&id, &latest)?;
        // Whether a step of the backfill has failed: only then are later chunks checked for steps
        // that read a failed partition (a scan of the backfill's steps).
        let status = self.backfill_status(id.as_str()).await?;
        let mut failures = status.failed + status.skipped > 0;
        for next in latest.iter().filter(|r| r.status == RunStatus::Queued) {
            if opts.cancel.is_cancelled()
                || self
                    .store
                    .get_backfill(id.as_str())
                    .await?
                    .cancelled_at
                    .is_some()
            {
                break;
            }
            // Another process may have taken (or a cancel ended) it meanwhile.
            if self.store.get_run(next.run_id.as_str()).await?.status != RunStatus::Queued {
                continue;
            }
            let run_opts = ExecuteOptions {
                concurrency: opts
                    .concurrency
                    .or(record.concurrency.map(|c| c.max(1) as usize)),
                cancel: opts.cancel.child_token(),
                observer: opts.observer.clone(),
                no_wait: opts.no_wait,
            };
            if failures {
                self.skip_behind_failures(&record, &next.run_id).await?;
            }
            let watcher = self.watch_for_cancel(&id, run_opts.cancel.clone());
            let result = self.execute(&next.run_id, run_opts).await;
            watcher.abort();
            let report = result?;
            failures |= report.count(crate::store::StepStatus::Failed) > 0
                || report.count(crate::store::StepStatus::Skipped) > 0;
        }
        self.backfill_status(id.as_str()).await
    }

    /// Marks skipped the pending steps of `run_id` that read a step of the backfill that failed (or was
    /// skipped) in an earlier chunk's run and is not planned again in this one: a week is not computed
    /// from a day that failed. Steps behind them in the same run are skipped too. Resume retries all.
    async fn skip_behind_failures(
        &self,
        record: &crate::store::BackfillRecord,
        run_id: &crate::key::RunId,
    ) -> Result<(), EngineError> {
        use crate::store::{NewEvent, StepOutcome, StepStatus};
        let steps = self.store.steps(run_id).await?;
        let planned: std::collections::HashSet<_> = steps.iter().map(|s| s.step_key()).collect();
        let mut failed: std::collections::HashSet<crate::key::StepKey> = self
            .chunk_steps_of(record)
            .await?
            .into_values()
            .flat_map(|c| c.steps)
            .filter(|s| !s.1 && matches!(s.2, StepStatus::Failed | StepStatus::Skipped))
            .map(|s| s.0)
            .filter(|k| !planned.contains(k))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        for s in steps.iter().filter(|s| s.status == StepStatus::Pending) {
            let key = s.step_key();
            let spec = &self.project.assets[&key.asset];
            let bad = crate::upstream::upstreams(&self.project, spec, &key)
                .iter()
                .flat_map(|u| match u.steps() {
                    Some(steps) => steps,
                    None => failed
                        .iter()
                        .filter(|f| &f.asset == u.asset())
                        .cloned()
                        .collect(),
                })
                .find(|k| failed.contains(k));
            let Some(bad) = bad else {
                continue;
            };
            let reason = format!("upstream '{bad}' failed in this backfill");
            let event = spine_schemas::events::Event::StepSkipped {
                reason: reason.clone(),
            };
            let outcome = StepOutcome {
                failure_class: None,
                status: StepStatus::Skipped,
                error: None,
                reason: Some(reason.clone()),
                materialization: None,
                events: vec![NewEvent::of(run_id, Some(&s.step_id), reason, &event)],
            };
            self.store
                .finish_step(run_id, &s.step_key(), outcome)
                .await?;
            failed.insert(key);
        }
        Ok(())
    }

    /// Cancels `token` once the backfill is cancelled in the store.
    fn watch_for_cancel(
        &self,
        id: &crate::key::BackfillId,
        token: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CANCEL_POLL).await;
                match store.get_backfill(id.as_str()).await {
                    Ok(b) if b.cancelled_at.is_some() => {
                        token.cancel();
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("cannot read backfill {id}: {e}"),
                }
            }
        })
    }

    /// Makes a backfill runnable again: clears a cancel, settles runs whose process died (recording
    /// what they committed), and gives each chunk whose latest run ended without finishing a new queued
    /// run of exactly the step keys the chunk has not committed. Then [`run_backfill`](Self::run_backfill)
    /// carries on.
    pub async fn prepare_resume(&self, id: &str) -> Result<BackfillStatus, EngineError> {
        let record = self.store.get_backfill(id).await?;
        // Refused before anything changes (or is announced) when a live process runs it.
        let latest = self.latest_chunk_runs(&record.backfill_id).await?;
        self.refuse_if_running(&record.backfill_id, &latest)?;
        self.store.uncancel_backfill(&record.backfill_id).await?;
        for r in self.recover_interrupted_runs().await? {
            tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
        }
        for (chunk, c) in self.chunk_steps_of(&record).await? {
            let Some(latest) = c.runs.last() else {
                continue;
            };
            if !latest.status.is_terminal() {
                continue;
            }
            let todo: Vec<_> = c
                .steps
                .iter()
                .filter(|s| !s.1)
                .map(|s| s.0.clone())
                .collect();
            if todo.is_empty() {
                continue;
            }
            // Not forced: a partition another run materialized meanwhile and that is fresh now
            // counts as done (up to date) instead of being computed again.
            let planned = self.planned_run_by(
                record.selection.as_deref(),
                false,
                &todo,
                &format!("backfill:{}", record.backfill_id),
            );
            self.store
                .add_backfill_run(&record.backfill_id, chunk, &planned)
                .await?;
        }
        self.backfill_status(record.backfill_id.as_str()).await
    }

    /// Asks a backfill to stop: its queued runs are cancelled at once; a running one cancels its steps before
    /// their commits (its process watches for the cancel). Returns the status afterwards.
    pub async fn cancel_backfill(&self, id: &str) -> Result<BackfillStatus, EngineError> {
        let record = self.store.get_backfill(id).await?;
        self.store.cancel_backfill(&record.backfill_id).await?;
        self.backfill_status(record.backfill_id.as_str()).await
    }

    /// The latest run of each chunk, in chunk order, read once: a backfill of 10,000 one-partition
    /// runs must not read all its runs again before each one.
    async fn latest_chunk_runs(
        &self,
        id: &crate::key::BackfillId,
    ) -> Result<Vec<crate::store::RunRecord>, EngineError> {
        let runs = self.store.backfill_runs(id).await?;
        let mut latest: Vec<crate::store::RunRecord> = Vec::new();
        for (i, (chunk, _, run)) in runs.iter().enumerate() {
            if runs.get(i + 1).is_none_or(|(next, _, _)| next != chunk) {
                latest.push(run.clone());
            }
        }
        Ok(latest)
    }

    /// E0415 when a live process is running one of the backfill's runs.
    fn refuse_if_running(
        &self,
        id: &crate::key::BackfillId,
        latest: &[crate::store::RunRecord],
    ) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let Some(r) = latest
            .iter()
            .find(|r| r.status == RunStatus::Running && !crate::recovery::is_interrupted(r, now))
        else {
            return Ok(());
        };
        Err(DefinitionError::new(
            "E0415",
            format!(
                "backfill {id} is being run by process {} on {} (run {})",
                r.pid.unwrap_or_default(),
                r.host.as_deref().unwrap_or("?"),
                r.run_id
            ),
        )
        .hint("`assets backfill status ID` follows it; `assets backfill cancel ID` stops it")
        .into())
    }
}
