//! A step whose run store failed under it (a database restart, a dropped connection) in a run this
//! process executes alone: it waits for the store (with backoff, up to a lease) and then picks the
//! step up where the store has it, as a worker picks up a re-claimed step — a commit of its attempt
//! that landed is recorded, an attempt that did not commit is made again as the next one, a step that
//! never started starts. The run goes on instead of failing the step. (Workers leave such a step to
//! be re-claimed instead: see `worker`.)

use super::*;

/// Times one step is picked up again after store failures before they fail it.
const RESUMES: u32 = 10;

impl Executor {
    /// Runs `key` from attempt `first`, picking it up again after store failures (see the module
    /// docs).
    pub(super) async fn run_step_resuming(
        &self,
        key: &StepKey,
        first: u32,
    ) -> Result<StepReport, EngineError> {
        let result = self.run_step_inner(key, first).await;
        self.resuming(key, "", result, || self.pick_up(key)).await
    }

    /// Ends a step that never started (skipped, cancelled) as [`Executor::end_step`] does, picking
    /// the end up again after store failures in a run this process executes alone: once the store
    /// answers, an end that committed is taken as it is, and one that did not is recorded again.
    pub(super) async fn end_step_resuming(
        &self,
        report: StepReport,
        status: StepStatus,
        reason: String,
    ) -> Result<StepReport, EngineError> {
        let key = &report.step();
        let (report, reason) = (&report, &reason);
        let end = move || async move {
            self.end_step(report.clone(), status, None, Some(reason.clone()))
                .await
        };
        let result = end().await;
        let recover = move || async move {
            let rec = self.step_record_when_back(key).await?;
            match rec.filter(|r| r.status.is_terminal()) {
                Some(rec) => {
                    let mut ended = report.clone();
                    ended.status = rec.status;
                    ended.reason = rec.reason;
                    Ok(ended)
                }
                None => end().await,
            }
        };
        let during = " while the step's end was recorded";
        self.resuming(key, during, result, recover).await
    }

    /// `result`, or — while it is a store failure in a run this process executes alone — what
    /// `recover` gives once called again, at most [`RESUMES`] times. Workers share the run: the
    /// failure is theirs to handle (a re-claim).
    async fn resuming<F, Fut>(
        &self,
        key: &StepKey,
        during: &str,
        mut result: Result<StepReport, EngineError>,
        mut recover: F,
    ) -> Result<StepReport, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<StepReport, EngineError>>,
    {
        for _ in 0..RESUMES {
            let Err(EngineError::Store(e)) = result else {
                return result;
            };
            if self.run.shared {
                return Err(EngineError::Store(e));
            }
            tracing::warn!(
                "{key}: the run store failed ({e}){during}; waiting for it to pick the step up"
            );
            result = recover().await;
        }
        result
    }

    /// Picks `key` up where the store has it (see the module docs).
    async fn pick_up(&self, key: &StepKey) -> Result<StepReport, EngineError> {
        let Some(rec) = self.step_record_when_back(key).await? else {
            return Err(EngineError::Internal(format!(
                "step {key} is not in its run"
            )));
        };
        match rec.status {
            StepStatus::Pending => self.run_step_inner(key, 1).await,
            StepStatus::Running => match self.landed_outcome(&self.run.run_id, &rec).await? {
                Some(outcome) => self.record_landed(key, outcome).await,
                None => {
                    self.run_step_inner(key, rec.attempt.max(0) as u32 + 1)
                        .await
                }
            },
            // Its end was recorded before the store failed.
            status => {
                let mut report = StepReport::new(key);
                report.status = status;
                report.attempts = rec.attempt.max(0) as u32;
                Ok(report)
            }
        }
    }

    /// `key`'s step record, read once the store answers again (tried with backoff for up to a
    /// lease); the error when it does not.
    async fn step_record_when_back(
        &self,
        key: &StepKey,
    ) -> Result<Option<StepRecord>, EngineError> {
        let deadline = self.clock.now_ms() + self.lease_ms();
        let mut pause = Duration::from_millis(200);
        loop {
            match self.store.steps(&self.run.run_id).await {
                Ok(steps) => return Ok(steps.into_iter().find(|s| s.step_key() == *key)),
                Err(e) if self.clock.now_ms() >= deadline => return Err(e.into()),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Records the landed commit's outcome; a recorded materialization becomes the run's latest.
    async fn record_landed(
        &self,
        key: &StepKey,
        outcome: StepOutcome,
    ) -> Result<StepReport, EngineError> {
        let mut report = StepReport::new(key);
        report.status = outcome.status;
        let m = outcome.materialization.clone();
        let id = self
            .store
            .finish_step(&self.run.run_id, key, outcome)
            .await?;
        self.run.claims.end(key);
        if let (Some(id), Some(m)) = (id, m) {
            report.rows = Some(m.row_count);
            report.delta_version = Some(m.delta_version);
            tracing::info!(
                "its commit had landed before the store failed: recorded, not recomputed"
            );
            self.remember(key, id, m);
        }
        Ok(report)
    }
}
