//! Recording runs before anything runs: [`Instance::submit`] plans a selection into a queued run with its
//! steps; signals hand a parked step its payload; [`Instance::record_run_end`] writes how a run ended.

use super::*;

impl Instance {
    /// Records a run of `selection` as `queued`, with its planned steps (all pending) in dependency
    /// order, and returns its id. Nothing runs: any process on this project can
    /// [`execute`](Instance::execute) it. A selection that matches nothing is E0403.
    pub async fn submit(&self, selection: Option<&str>, force: bool) -> Result<RunId, EngineError> {
        self.submit_partitions(selection, force, &PartitionSelection::All)
            .await
    }

    /// [`submit`](Instance::submit) covering only `partitions` of the selected partitioned assets (E0411
    /// for a partition an asset does not have).
    pub async fn submit_partitions(
        &self,
        selection: Option<&str>,
        force: bool,
        partitions: &PartitionSelection,
    ) -> Result<RunId, EngineError> {
        self.submit_with(selection, force, false, partitions).await
    }

    /// [`submit_partitions`](Instance::submit_partitions), and with `full_refresh` incremental assets
    /// rebuild their tables instead of appending (it implies `force`).
    pub async fn submit_with(
        &self,
        selection: Option<&str>,
        force: bool,
        full_refresh: bool,
        partitions: &PartitionSelection,
    ) -> Result<RunId, EngineError> {
        let selected = crate::plan::select_some(&self.project, selection)?;
        let order =
            crate::plan::steps_in_order(&self.project, &selected, partitions, self.clock.now())?;
        let mut planned = self.planned_run(selection, force || full_refresh, &order);
        planned.run.full_refresh = full_refresh;
        self.store.create_run(&planned.run, &planned.steps).await?;
        Ok(planned.run.run_id)
    }

    /// A queued run of exactly `steps`, in their order, all pending, with no owner until an executor
    /// takes it (`start_run`).
    pub(crate) fn planned_run(
        &self,
        selection: Option<&str>,
        force: bool,
        steps: &[StepKey],
    ) -> crate::store::PlannedRun {
        self.planned_run_by(selection, force, steps, &self.launcher)
    }

    /// [`planned_run`](Instance::planned_run) launched by `by` (`schedule:NAME`, `backfill:ID`, …).
    pub(crate) fn planned_run_by(
        &self,
        selection: Option<&str>,
        force: bool,
        steps: &[StepKey],
        by: &str,
    ) -> crate::store::PlannedRun {
        let run_id = RunId::new();
        let run = RunRecord {
            selection: selection.map(str::to_string),
            force,
            tags: self.tags.clone(),
            ..RunRecord::queued(&run_id, self.clock.stamp(), Some(by))
        };
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, k)| StepRecord::planned(&run_id, i as i64, k))
            .collect();
        crate::store::PlannedRun { run, steps }
    }

    /// Signals a parked step of a `waiting` run with `payload` (an approval, a workflow's result); the
    /// next [`execute`](Instance::execute) of the run runs the step again with it. E0408 when the step is
    /// not parked.
    pub async fn signal(
        &self,
        run_id: &RunId,
        step: &str,
        payload: serde_json::Value,
    ) -> Result<(), EngineError> {
        let event = Event::StepSignalled { payload };
        let ev = NewEvent::of(run_id, Some(step), format!("{step} signalled"), &event);
        // A name that is no step key names no waiting step either.
        let parked = match step.parse::<StepKey>() {
            Ok(key) => self.store.signal_step(run_id, &key, ev).await?,
            Err(_) => false,
        };
        if !parked {
            return Err(crate::error::DefinitionError::new(
                "E0408",
                format!("step '{step}' of run {run_id} is not waiting for a signal"),
            )
            .hint("`assets run ID` shows which steps wait")
            .into());
        }
        Ok(())
    }

    /// The latest signal payload of each signalled step of a run.
    pub(super) async fn signals(
        &self,
        run_id: &RunId,
    ) -> Result<HashMap<String, serde_json::Value>, EngineError> {
        let mut out = HashMap::new();
        for r in self.store.events(run_id, 0).await? {
            if let (Some(step), Some(Event::StepSignalled { payload })) =
                (r.event.step_id.clone(), r.event.event())
            {
                out.insert(step, payload);
            }
        }
        Ok(out)
    }

    /// Records how a run ended. When the store refuses (a full disk), the run is settled instead
    /// ([`settle_run_end`](Self::settle_run_end)).
    pub(super) async fn record_run_end(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        event: NewEvent,
    ) -> Result<(), EngineError> {
        let Err(first) = self
            .store
            .set_run_status(run_id, status, error, event)
            .await
        else {
            return Ok(());
        };
        let why = format!("the run store could not record how the run ended: {first}");
        self.settle_run_end(run_id, why, Some(first.into())).await
    }

    /// Settles a run whose end the store may not fully know, as recovery would (each unfinished step
    /// recorded from its Delta commit if that landed, else failed; the run failed with `why`), through
    /// a new connection (a connection whose transaction failed on a full disk is not trusted), tried 3
    /// times 100 ms, 300 ms and 900 ms apart: the run's scratch files are gone by then and may have
    /// made room. When it still fails, the run stays `running` in the store and the next run settles
    /// it; the error returned is `cause` (the first failure), else the last.
    pub(super) async fn settle_run_end(
        &self,
        run_id: &RunId,
        why: String,
        cause: Option<EngineError>,
    ) -> Result<(), EngineError> {
        tracing::warn!("{why}; settling run {run_id}");
        let mut delay = Duration::from_millis(100);
        let mut last = None;
        for attempt in 1..=3 {
            tokio::time::sleep(delay).await;
            delay *= 3;
            match self.settle_on_new_connection(run_id, &why).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!("settling run {run_id} failed (attempt {attempt}): {e}");
                    last = Some(e);
                }
            }
        }
        Err(cause
            .or(last)
            .unwrap_or_else(|| EngineError::Internal(format!("settling run {run_id} failed"))))
    }

    async fn settle_on_new_connection(&self, run_id: &RunId, why: &str) -> Result<(), EngineError> {
        let store = crate::store::open_store(&self.project.config.state_url)
            .await?
            .with_clock(self.clock.clone());
        let run = store.get_run(run_id.as_str()).await?;
        let engine = Instance {
            store: store.clone(),
            ..self.clone()
        };
        let settled = engine.recover_run(&run, Some(why.to_string())).await;
        store.close().await;
        settled.map(|_| ())
    }
}
