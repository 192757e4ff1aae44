//! The executor of one run: it owns the run's execution state ([`RunState`]: what the run knows of
//! every step key's latest materialization, its session, claims, compute slots, cancel token and
//! observer) and takes a run from `queued` to its end. [`Instance`] opens things and hands a run to it
//! ([`Instance::execute`]); the executor's stages are in the sibling modules: `dispatch` (launch ready
//! steps, cascade skips), `step` (one step through its attempts), `inputs` (what a step reads),
//! `stages` (an attempt's output policy), `audit` (checks before publishing), `record` (how a step
//! ended, in the store).

use super::*;

/// One execution of one run. Cheap to clone (two `Arc`s): each step's task holds one.
#[derive(Clone)]
pub(super) struct Executor {
    engine: Arc<Instance>,
    pub(super) run: Arc<RunState>,
}

/// The executor works with its engine's project, store, warehouse, kinds and clock; it reads them
/// through the engine rather than copying each.
impl std::ops::Deref for Executor {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.engine
    }
}

/// A taken run's plan: its steps in order and those earlier executions finished.
pub(super) struct Plan {
    order: Vec<StepKey>,
    done: HashMap<StepKey, StepStatus>,
    concurrency: usize,
    span: tracing::Span,
    cancel: CancellationToken,
    /// Cancels the run's token when a cancel is requested in the store, until dropped.
    _cancel_watch: claim::Heartbeat,
}

/// State shared by the steps of one run.
pub(super) struct RunState {
    pub(super) run_id: RunId,
    pub(super) force: bool,
    /// Incremental assets rebuild instead of appending.
    pub(super) full_refresh: bool,
    pub(super) cancel: CancellationToken,
    pub(super) observer: Option<Arc<dyn RunObserver>>,
    /// The latest materialization of every step key, as this run knows it.
    pub(super) latest: Mutex<HashMap<StepKey, Materialization>>,
    pub(super) registered: Mutex<HashMap<AssetKey, i64>>,
    pub(super) session: SessionContext,
    /// Who this run's claims belong to: `host:pid:run`.
    pub(super) owner: String,
    /// The step keys this execution holds claims on (renewed by one heartbeat task).
    pub(super) claims: Arc<claim::HeldClaims>,
    /// Workers share this run's steps (see `worker`): a step starts only while it is still ready,
    /// never waits for a claim another owner holds, and records its end only while its claim holds.
    pub(super) shared: bool,
    /// Steps of this run at once across workers (its `concurrency` tag), when shared.
    pub(super) max_steps: Option<usize>,
    pub(super) no_wait: bool,
    /// Signals that resumed parked steps, by step id.
    pub(super) signals: HashMap<String, serde_json::Value>,
    /// What the run's steps may pay together.
    pub(super) budget: crate::kinds::checkpoints::RunBudget,
    /// A step's end could not be written (a full disk): the store may not know how steps ended, so
    /// the run is settled as recovery would settle it rather than just given its end state.
    pub(super) store_failed: std::sync::atomic::AtomicBool,
    /// Compute slots (`concurrency` of them): a step holds one from its start to its end, except
    /// that a partition's step frees it once its output is staged, so partitions of one table that
    /// wait for their commits side by side are committed together (see `warehouse::partitioned`).
    pub(super) slots: Arc<tokio::sync::Semaphore>,
}

impl RunState {
    /// Whether the run's shared session serves `key` at `version` already.
    pub(super) fn serves(&self, key: &AssetKey, version: i64) -> bool {
        self.registered.lock().expect("registered lock").get(key) == Some(&version)
    }

    /// Makes `key` readable in the run's session (replacing any earlier registration) and remembers
    /// which Delta version it serves.
    pub(super) fn register(
        &self,
        key: &AssetKey,
        provider: Arc<dyn datafusion::catalog::TableProvider>,
        version: i64,
    ) -> datafusion::error::Result<()> {
        // One lock around replace-and-record: steps running side by side that read the same upstream
        // register it concurrently, and an unguarded deregister/register pair lets the second
        // `register_table` fail with "table already exists".
        let mut registered = self.registered.lock().expect("registered lock");
        // Two readers of one upstream that start together both find it unregistered; the second must
        // not replace the first's registration: between its deregister and register the first may be
        // planning its query, and would not find the table.
        if registered.get(key) == Some(&version) {
            return Ok(());
        }
        let name = TableReference::bare(key.as_str());
        let _ = self.session.deregister_table(name.clone());
        self.session.register_table(name, provider)?;
        registered.insert(key.clone(), version);
        Ok(())
    }
}

impl Executor {
    /// The executor of a run that is not recorded in the store (a reproduction): `run` as given.
    pub(super) fn detached(engine: &Instance, run: RunState) -> Self {
        Executor {
            engine: Arc::new(engine.clone()),
            run: Arc::new(run),
        }
    }

    /// Takes the queued run `run_id` (`queued` → `running`, atomically, so two executors never both
    /// run it; E0407 otherwise) after settling interrupted runs, and sets up its execution state.
    pub(super) async fn take(
        engine: &Instance,
        run_id: &RunId,
        opts: &ExecuteOptions,
    ) -> Result<(Executor, Plan), EngineError> {
        for r in engine.recover_interrupted_runs().await? {
            tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
        }
        let run = engine.store.get_run(run_id.as_str()).await?;
        let planned = engine.store.steps(run_id).await?;
        let order: Vec<StepKey> = planned.iter().map(StepRecord::step_key).collect();
        // A resumed run keeps what its earlier executions finished; parked steps stay parked until
        // signalled (then they are pending again).
        let done: HashMap<StepKey, StepStatus> = planned
            .iter()
            .filter(|s| s.status != StepStatus::Pending)
            .map(|s| (s.step_key(), s.status))
            .collect();
        // Only a run that parked steps before (it is `waiting`) has signals to hand them.
        let signals = if run.status == RunStatus::Waiting {
            engine.signals(run_id).await?
        } else {
            HashMap::new()
        };
        if let Some(gone) = order
            .iter()
            .find(|k| !engine.project.assets.contains_key(&k.asset))
        {
            return Err(crate::error::DefinitionError::new(
                "E0406",
                format!("run {run_id} plans '{gone}', which this project no longer defines"),
            )
            .hint("submit a new run")
            .into());
        }
        let (pid, host) = (std::process::id() as i64, crate::store::host_name());
        let ev = NewEvent::of(
            run_id,
            None,
            "run started",
            &Event::RunStarted {
                pid,
                host: host.clone(),
            },
        );
        let lease = crate::store::RunLease {
            pid,
            owner: format!("{host}:{pid}:{run_id}"),
            host,
            lease_until_ms: engine.clock.now_ms()
                + engine.project.config.settings.lease.as_millis() as i64,
        };
        let taken = engine.store.start_run(run_id, &lease, ev).await?;
        if !taken {
            return Err(crate::error::DefinitionError::new(
                "E0407",
                format!(
                    "run {run_id} is {}, not queued: it is being or was executed",
                    run.status
                ),
            )
            .hint("`assets runs` shows queued runs")
            .into());
        }
        let run_span = tracing::info_span!("run", run_id = %run_id);
        if let Some(o) = &opts.observer {
            o.planned(run_id, &order);
        }
        let concurrency = opts
            .concurrency
            .unwrap_or(engine.project.config.settings.concurrency)
            .max(1);
        tracing::info!(parent: &run_span, steps = order.len(), concurrency, "run started");
        let config = SessionConfig::new().with_target_partitions(concurrency.clamp(1, 4));
        // The caller's token (Ctrl-C) or a request in the store (`assets cancel`, the UI) cancels.
        let cancel = opts.cancel.child_token();
        let _cancel_watch = engine.watch_run_cancel(run_id, cancel.clone());
        let state = Arc::new(RunState {
            run_id: run_id.clone(),
            force: run.force,
            full_refresh: run.full_refresh,
            cancel: cancel.clone(),
            observer: opts.observer.clone(),
            latest: Mutex::new(engine.store.latest_materializations().await?),
            registered: Mutex::new(HashMap::new()),
            session: crate::session::bounded(&engine.project.config, config),
            owner: lease.owner.clone(),
            no_wait: opts.no_wait,
            signals,
            budget: crate::kinds::checkpoints::RunBudget::of_run(
                &engine.project.config.budgets,
                &run.tags,
            ),
            claims: Arc::default(),
            shared: false,
            max_steps: None,
            store_failed: Default::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
        });
        let executor = Executor {
            engine: Arc::new(engine.clone()),
            run: state,
        };
        let plan = Plan {
            order,
            done,
            concurrency,
            span: run_span,
            cancel,
            _cancel_watch,
        };
        Ok((executor, plan))
    }

    /// Executes the taken run's plan and records how the run ended (`started`: when it was asked for).
    pub(super) async fn run(self, plan: Plan, started: Instant) -> Result<RunReport, EngineError> {
        let run_id = &self.run.run_id;
        let run_span = plan.span.clone();
        let heartbeat = self.heartbeat(self.run.owner.clone(), self.run.claims.clone());
        let reports = match self
            .dispatch(&plan.order, &plan.done, plan.concurrency)
            .instrument(run_span.clone())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Never leave the run `running` because this process failed (a full disk, a store
                // error): record why, as far as the store still lets us; the next run settles the rest.
                let _ = std::fs::remove_dir_all(self.run_scratch(run_id));
                let error = format!("the executor failed: {e}");
                let ev = NewEvent::of(
                    run_id,
                    None,
                    error.clone(),
                    &Event::RunFailed {
                        error: Some(error.clone()),
                    },
                );
                if let Err(e2) = self
                    .record_run_end(run_id, RunStatus::Failed, Some(&error), ev)
                    .await
                {
                    tracing::error!("cannot record that run {run_id} failed: {e2}");
                }
                return Err(e);
            }
        };
        drop(heartbeat);
        let _ = std::fs::remove_dir_all(self.run_scratch(run_id));
        let (status, event, msg, error) = run_outcome(&reports, plan.cancel.is_cancelled());
        if self
            .run
            .store_failed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let why = "the run store could not record how some steps ended".to_string();
            self.settle_run_end(run_id, why, None).await?;
        } else {
            self.record_run_end(
                run_id,
                status,
                error.as_deref(),
                NewEvent::of(run_id, None, msg, &event),
            )
            .await?;
        }
        tracing::info!(parent: &run_span, status = %status, "{msg}");
        // Steps behind a parked one have not run: they are reported pending.
        let steps = plan
            .order
            .iter()
            .map(|k| {
                reports
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| StepReport::new(k))
            })
            .collect();
        Ok(RunReport {
            run_id: run_id.clone(),
            status,
            steps,
            duration_ms: started.elapsed().as_millis(),
        })
    }
}

/// Stage (run end): a run's end state from how its steps ended — cancelled (the token, or a
/// cancelled step), else waiting (a parked step), else failed (a failed step), else succeeded — with
/// its event, message and error.
pub(super) fn run_outcome(
    reports: &HashMap<StepKey, StepReport>,
    cancelled: bool,
) -> (RunStatus, Event, &'static str, Option<String>) {
    let failed = reports.values().any(|r| r.status == StepStatus::Failed);
    // A step that stopped the run (over its budget) failed it; the rest were cancelled by it.
    let stopped = reports.values().any(|r| r.stops_run);
    let cancelled =
        !stopped && (cancelled || reports.values().any(|r| r.status == StepStatus::Cancelled));
    let error = failed.then(|| {
        let n = reports
            .values()
            .filter(|r| r.status == StepStatus::Failed)
            .count();
        format!("{n} step(s) failed")
    });
    let waiting = reports
        .values()
        .filter(|r| r.status == StepStatus::Waiting)
        .count();
    let (status, event, msg) = if cancelled {
        (
            RunStatus::Cancelled,
            Event::RunCancelled {},
            "run cancelled",
        )
    } else if waiting > 0 {
        let event = Event::RunWaiting { waiting };
        (RunStatus::Waiting, event, "run waiting for signals")
    } else if failed {
        let event = Event::RunFailed {
            error: error.clone(),
        };
        (RunStatus::Failed, event, "run failed")
    } else {
        (
            RunStatus::Succeeded,
            Event::RunSucceeded {},
            "run succeeded",
        )
    };
    (status, event, msg, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(asset: &str, status: StepStatus) -> (StepKey, StepReport) {
        let key = StepKey {
            asset: AssetKey::parse(asset).unwrap(),
            partition: None,
        };
        let mut r = StepReport::new(&key);
        r.status = status;
        (key, r)
    }

    #[test]
    fn a_runs_end_is_cancelled_before_waiting_before_failed() {
        let all = |s: &[StepStatus]| -> HashMap<StepKey, StepReport> {
            s.iter()
                .enumerate()
                .map(|(i, s)| ended(&format!("a{i}"), *s))
                .collect()
        };
        let ok = all(&[
            StepStatus::Succeeded,
            StepStatus::UpToDate,
            StepStatus::Skipped,
        ]);
        assert_eq!(run_outcome(&ok, false).0, RunStatus::Succeeded);
        assert_eq!(
            run_outcome(&ok, true).0,
            RunStatus::Cancelled,
            "the token cancels"
        );
        let failed = all(&[
            StepStatus::Failed,
            StepStatus::Failed,
            StepStatus::Succeeded,
        ]);
        let (status, _, _, error) = run_outcome(&failed, false);
        assert_eq!(
            (status, error.as_deref()),
            (RunStatus::Failed, Some("2 step(s) failed"))
        );
        let parked = all(&[StepStatus::Failed, StepStatus::Waiting]);
        assert_eq!(run_outcome(&parked, false).0, RunStatus::Waiting);
        let stopped = all(&[StepStatus::Waiting, StepStatus::Cancelled]);
        assert_eq!(run_outcome(&stopped, false).0, RunStatus::Cancelled);
    }
}
