//! Taking a run for the workers, and a worker's view of a run it works on.

use super::super::*;
use super::{Active, RunCtx, Worker};
use crate::store::RunLease;

/// A run's priority: its `priority` tag (higher first), 0 without one.
pub(super) fn priority(run: &RunRecord) -> i64 {
    run.tags
        .get("priority")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

impl Worker {
    /// Takes a queued (or signalled waiting) run for the workers; false when someone else took it.
    pub(super) async fn take(&mut self, run: &RunRecord) -> Result<bool, EngineError> {
        let (pid, host) = (std::process::id() as i64, crate::store::host_name());
        let ev = NewEvent::of(
            &run.run_id,
            None,
            format!("run started by workers (taken by {})", self.id),
            &Event::RunStarted {
                pid,
                host: host.clone(),
            },
        );
        let lease = RunLease {
            pid,
            host,
            owner: self.owner().into(),
            lease_until_ms: 0,
        };
        let taken = self.engine.store.start_run(&run.run_id, &lease, ev).await?;
        if taken {
            tracing::info!(run_id = %run.run_id, "run taken by workers");
        }
        Ok(taken)
    }

    /// Sets up this worker's view of `run` (whose steps are `steps`); `None` when the run cannot go
    /// on here (it plans an asset this project no longer defines: it is ended failed).
    pub(super) async fn open(
        &mut self,
        run: &RunRecord,
        steps: &[StepRecord],
    ) -> Result<Option<RunCtx>, EngineError> {
        let engine = &self.engine;
        let run_id = &run.run_id;
        let order: Vec<StepKey> = steps.iter().map(StepRecord::step_key).collect();
        if let Some(gone) = order
            .iter()
            .find(|k| !engine.project.assets.contains_key(&k.asset))
        {
            let msg = format!("run {run_id} plans '{gone}', which this worker's project does not define; deploy the same project to every worker");
            tracing::error!("{msg}");
            let ev = NewEvent::of(
                run_id,
                None,
                msg.clone(),
                &Event::RunFailed {
                    error: Some(msg.clone()),
                },
            );
            engine
                .store
                .end_run(run_id, RunStatus::Failed, Some(&msg), ev)
                .await?;
            return Ok(None);
        }
        Ok(Some(RunCtx {
            run: run.clone(),
            upstream: dispatch::plan_upstreams(&engine.project, &order),
            active: None,
        }))
    }

    /// The executor of `run_id` in this worker, set up on first use (its session, the signals its
    /// parked steps were given, a heartbeat for its claims, a watch for a cancel); `None` for a run
    /// this worker does not know.
    pub(super) async fn executor(
        &mut self,
        run_id: &RunId,
    ) -> Result<Option<Executor>, EngineError> {
        let Some(ctx) = self.runs.get(run_id) else {
            return Ok(None);
        };
        if let Some(a) = &ctx.active {
            return Ok(Some(a.exec.clone()));
        }
        let run = ctx.run.clone();
        let engine = &self.engine;
        let cancel = CancellationToken::new();
        let owner = format!("{}:{run_id}", self.id);
        let config = SessionConfig::new().with_target_partitions(self.opts.concurrency.clamp(1, 4));
        let state = RunState {
            run_id: run_id.clone(),
            force: run.force,
            full_refresh: run.full_refresh,
            cancel: cancel.clone(),
            observer: None,
            latest: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
            session: crate::session::bounded(&engine.project.config, config),
            owner: owner.clone(),
            claims: Arc::default(),
            shared: true,
            max_steps: run
                .tags
                .get("concurrency")
                .and_then(|c| c.trim().parse::<usize>().ok())
                .filter(|c| *c > 0),
            no_wait: false,
            signals: engine.signals(run_id).await?,
            budget: crate::kinds::checkpoints::RunBudget::of_run(
                &engine.project.config.budgets,
                &run.tags,
            ),
            store_failed: Default::default(),
            slots: self.slots.clone(),
        };
        let exec = Executor::detached(engine, state);
        let active = Active {
            _beat: exec.heartbeat(owner, exec.run.claims.clone()),
            _cancel_watch: engine.watch_run_cancel(run_id, cancel),
            exec: exec.clone(),
        };
        if let Some(ctx) = self.runs.get_mut(run_id) {
            ctx.active = Some(active);
        }
        Ok(Some(exec))
    }
}
