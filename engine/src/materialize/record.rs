//! The record stage of a step: how it ended (a materialization, or a status with its error or reason),
//! its events, and the release of its claim, in one store transaction; a recorded materialization
//! becomes the run's latest of its step key.

use super::*;

impl Executor {
    /// Records a step's success with its materialization, which becomes the run's latest of the step.
    pub(super) async fn record_success(
        &self,
        key: &StepKey,
        m: NewMaterialization,
    ) -> Result<(), EngineError> {
        let id = self
            .finish(
                key,
                (StepStatus::Succeeded, None),
                None,
                None,
                Some(m.clone()),
            )
            .await?;
        if let Some(id) = id {
            self.remember(key, id, m);
        }
        Ok(())
    }

    /// Makes the materialization recorded as `id` the run's latest of `key`.
    pub(super) fn remember(&self, key: &StepKey, id: i64, m: NewMaterialization) {
        let record = Materialization {
            id,
            created_at: self.clock.stamp(),
            m,
        };
        self.run
            .latest
            .lock()
            .expect("latest lock")
            .insert(key.clone(), record);
    }

    /// Records how a step ended (no materialization) and returns its report filled in.
    pub(super) async fn end_step(
        &self,
        mut report: StepReport,
        status: StepStatus,
        error: Option<String>,
        reason: Option<String>,
    ) -> Result<StepReport, EngineError> {
        let key = report.step();
        self.finish(
            &key,
            (status, report.failure_class),
            error.clone(),
            reason.clone(),
            None,
        )
        .await?;
        report.status = status;
        report.error = error;
        report.reason = reason;
        Ok(report)
    }

    pub(super) async fn finish(
        &self,
        key: &StepKey,
        (status, class): (StepStatus, Option<FailureClass>),
        error: Option<String>,
        reason: Option<String>,
        materialization: Option<NewMaterialization>,
    ) -> Result<Option<i64>, EngineError> {
        let class = class
            .filter(|_| status == StepStatus::Failed)
            .map(|c| c.as_str().to_string());
        let message = match (&materialization, &error, &reason) {
            (Some(m), _, _) if m.delta_version < 0 => {
                format!(
                    "observed {key}: {} rows, data version {}",
                    m.row_count, m.data_version
                )
            }
            (Some(m), _, _) => format!(
                "materialized {key}: {} rows, Delta version {}",
                m.row_count, m.delta_version
            ),
            (_, Some(e), _) => format!("{key} failed: {e}"),
            (_, _, Some(r)) => format!("{key} {}: {r}", status.as_str().replace('_', " ")),
            _ => format!("{key} {status}"),
        };
        let why = reason.clone().unwrap_or_default();
        let event = match (&materialization, status) {
            (Some(m), _) => Event::Materialization {
                delta_version: m.delta_version,
                rows: m.row_count,
                data_version: m.data_version.clone(),
                code_version: m.code_version.clone(),
                seq: m.seq,
                recovered: false,
            },
            (None, StepStatus::UpToDate) => Event::StepUpToDate { reason: why },
            (None, StepStatus::Failed) => Event::StepFailed {
                error: error.clone().unwrap_or_default(),
                class: class.clone(),
            },
            (None, StepStatus::Skipped) => Event::StepSkipped { reason: why },
            (None, StepStatus::Waiting) => Event::StepParked { reason: why },
            (None, _) => Event::StepCancelled { reason: why },
        };
        let step_id = key.to_string();
        let mut events = vec![NewEvent::of(
            &self.run.run_id,
            Some(&step_id),
            message,
            &event,
        )];
        for c in materialization.iter().flat_map(|m| &m.checks) {
            let check = Event::CheckResult {
                name: c.name.clone(),
                passed: c.passed,
                severity: c.severity,
            };
            events.push(NewEvent::of(
                &self.run.run_id,
                Some(&step_id),
                format!("check {}", c.summary()),
                &check,
            ));
        }
        let outcome = StepOutcome {
            failure_class: class,
            status,
            error,
            reason,
            materialization,
            // Ending the step releases this run's claim on the step key, if it holds one.
            events,
        };
        let id = if self.run.shared && self.run.claims.holds(key) {
            // Workers share the run: the end is recorded only while this worker's claim holds.
            let id = self
                .store
                .finish_claimed_step(&self.run.owner, &self.run.run_id, key, outcome)
                .await?;
            if id.is_none() {
                tracing::warn!(
                    "{key}: another worker re-claimed this step; its end here is not recorded"
                );
            }
            id.flatten()
        } else if self.run.shared {
            // Ended before it started (fresh, skipped, cancelled): only while it is still pending.
            self.store
                .end_pending_step(&self.run.run_id, key, outcome)
                .await?;
            None
        } else {
            self.store
                .finish_step(&self.run.run_id, key, outcome)
                .await?
        };
        self.run.claims.end(key);
        Ok(id)
    }
}
