//! Operator control of recorded runs: [`Instance::cancel_run`] stops one (at once when nothing is
//! executing it, else through a request its executor polls), and [`Instance::rerun`] records a new run
//! of an ended run's unfinished steps (from its failure) or of all of them.

use super::*;
use crate::error::DefinitionError;
use crate::store::CancelOutcome;

/// How often an executing run reads whether a cancel was requested.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// A new queued run re-executing an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// The new run (queued: [`Instance::execute`] runs it).
    pub run_id: RunId,
    /// The steps it plans, in the earlier run's order.
    pub steps: Vec<StepKey>,
}

impl Instance {
    /// Cancels run `id` (an id or a unique prefix). A queued or parked run is cancelled at once; a
    /// running one is asked to stop, and its executor cancels every step that has not committed
    /// (committed ones stay). A run whose process died is settled first, as recovery would. E0421 when
    /// the run has ended.
    pub async fn cancel_run(&self, id: &str) -> Result<CancelOutcome, EngineError> {
        for r in self.recover_interrupted_runs().await? {
            tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
        }
        let run = self.store.get_run(id).await?;
        match self
            .store
            .cancel_run(&run.run_id, "cancelled by request")
            .await?
        {
            CancelOutcome::Ended(status) => Err(DefinitionError::new(
                "E0421",
                format!(
                    "run {} has ended ({status}): there is nothing to cancel",
                    run.run_id
                ),
            )
            .hint("`assets rerun ID` runs its unfinished steps again")
            .into()),
            done => Ok(done),
        }
    }

    /// Records a new queued run re-executing run `id`: with `from_failure`, the steps that did not
    /// succeed (failed, skipped behind a failure, cancelled, never started); else every step. It keeps
    /// the run's selection, `force` and `full_refresh`. E0422 when the run has not ended, or (from its
    /// failure) when every step succeeded; E0406 when the project no longer defines a step's asset.
    pub async fn rerun(&self, id: &str, from_failure: bool) -> Result<Rerun, EngineError> {
        let run = self.store.get_run(id).await?;
        if !run.status.is_terminal() {
            let hint = match run.status {
                RunStatus::Waiting => "`assets signal` a parked step, then `assets execute ID`",
                _ => "wait for it to end, or `assets cancel ID`",
            };
            return Err(DefinitionError::new(
                "E0422",
                format!(
                    "run {} is {}: only a run that ended can be re-run",
                    run.run_id, run.status
                ),
            )
            .hint(hint)
            .into());
        }
        let steps: Vec<StepKey> = self
            .store
            .steps(&run.run_id)
            .await?
            .iter()
            .filter(|s| {
                !from_failure || !matches!(s.status, StepStatus::Succeeded | StepStatus::UpToDate)
            })
            .map(StepRecord::step_key)
            .collect();
        if steps.is_empty() {
            return Err(DefinitionError::new(
                "E0422",
                format!(
                    "run {} has no failed, skipped or cancelled step to re-run",
                    run.run_id
                ),
            )
            .hint("`assets rerun ID --all` runs every step again")
            .into());
        }
        if let Some(gone) = steps
            .iter()
            .find(|k| !self.project.assets.contains_key(&k.asset))
        {
            return Err(DefinitionError::new(
                "E0406",
                format!(
                    "run {} planned '{gone}', which this project no longer defines",
                    run.run_id
                ),
            )
            .hint("materialize a selection instead")
            .into());
        }
        let mut planned = self.planned_run_by(
            run.selection.as_deref(),
            run.force,
            &steps,
            &format!("rerun:{}", run.run_id),
        );
        planned.run.full_refresh = run.full_refresh;
        self.store.create_run(&planned.run, &planned.steps).await?;
        let how = if from_failure {
            "from its failure"
        } else {
            "all steps"
        };
        let ev = NewEvent::of(
            &planned.run.run_id,
            None,
            format!("re-execution of run {} ({how})", run.run_id),
            &Event::Log {
                level: "info".into(),
            },
        );
        self.store.append_events(&[ev]).await?;
        Ok(Rerun {
            run_id: planned.run.run_id,
            steps,
        })
    }

    /// Cancels `token` once a cancel of `run_id` is requested in the store, until dropped.
    pub(super) fn watch_run_cancel(
        &self,
        run_id: &RunId,
        token: CancellationToken,
    ) -> claim::Heartbeat {
        let (store, run_id) = (self.store.clone(), run_id.clone());
        claim::Heartbeat::of(tokio::spawn(async move {
            loop {
                tokio::time::sleep(CANCEL_POLL).await;
                match store.cancel_requested(&run_id).await {
                    Ok(true) => {
                        tracing::warn!(%run_id, "cancel requested");
                        token.cancel();
                        return;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!("cannot read whether run {run_id} is cancelled: {e}"),
                }
            }
        }))
    }
}
