//! Workers (`assets worker`): processes on any number of machines that share the steps of queued
//! runs through the run store, so one run's fan-out spreads over all of them.
//!
//! A worker takes a queued run by marking it `running` under [`WORKERS_OWNER`](crate::store::WORKERS_OWNER) (no single process
//! holds it, so it is never settled as interrupted). Then every worker, on every pass, reads the
//! run's steps from the store and decides what is ready (`ready`): it starts a ready step under a
//! claim with a lease, in a transaction that also checks the step is still ready, so no two workers
//! start it; it records skips of steps behind a failed upstream only while they are still pending;
//! and it ends the run once (a guarded `running` → end). What a step reads comes from the store and
//! the warehouse (its upstreams' latest materializations are read again before it starts), never from
//! another worker's memory.
//!
//! A worker renews its claims every `renew_every`. When it dies (kill -9, a lost machine) its claims
//! run out after `lease` — at once, for a dead process on the same host — and another worker
//! re-claims each of its running steps and reconciles it first: if the attempt's Delta commit landed
//! (its `txn` version is the step's sequence number) it is recorded, not recomputed; otherwise the
//! step is redone as the next attempt. A worker that cannot renew stops committing once its last
//! renewal is half a lease old, and records a step's end only while it still holds the claim.

mod queue;
mod queued;
mod ready;
mod reclaim;
mod take;

pub use queue::{InProcessQueue, QueueError, StepQueue, StepTask, TakenTask, TaskOutcome};

use super::claim::{owner_is_dead, Heartbeat};
use super::*;
use crate::store::StepClaim;

/// How a worker works.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Steps at once.
    pub concurrency: usize,
    /// Only steps of assets tagged `pool=NAME` (without: only steps of assets with no pool).
    pub pool: Option<String>,
    /// Pause between passes over the store when nothing finished.
    pub poll: Duration,
    /// Return once no run is left to work on (tests, batch jobs) instead of waiting for more.
    pub exit_when_idle: bool,
    /// Stops taking steps; the steps under way finish first.
    pub cancel: CancellationToken,
    /// Hand ready steps to this queue and execute the tasks it delivers (`assets worker
    /// --temporal`) instead of starting ready steps here; the runs worked on are those taken for
    /// the queue ([`QUEUE_OWNER`](crate::store::QUEUE_OWNER)).
    pub queue: Option<Arc<dyn StepQueue>>,
}

/// What a worker did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct WorkerReport {
    /// Steps it took to an end.
    pub steps: usize,
    /// Of those, steps it re-claimed from a worker whose lease ran out.
    pub reclaimed: usize,
    /// Runs it recorded the end of.
    pub runs_ended: usize,
}

/// One run as a worker knows it: the plan's step graph, and once this worker has something to do
/// in it, an executor sharing its steps.
struct RunCtx {
    run: RunRecord,
    upstream: HashMap<StepKey, Vec<StepKey>>,
    active: Option<Active>,
}

/// A run's executor in this worker, its claims' heartbeat and its cancel watch.
struct Active {
    exec: Executor,
    _beat: Heartbeat,
    _cancel_watch: Heartbeat,
}

/// A step task's end.
struct Done {
    run: RunId,
    step: StepKey,
    report: StepReport,
    reclaimed: bool,
}

struct Worker {
    engine: Instance,
    opts: WorkerOptions,
    /// `host:pid:w`: a claim's owner is this and the run id.
    id: String,
    slots: Arc<tokio::sync::Semaphore>,
    runs: HashMap<RunId, RunCtx>,
    tasks: JoinSet<Done>,
    busy: HashSet<(RunId, StepKey)>,
    report: WorkerReport,
    /// The last pass found runs to work on.
    listed: bool,
    /// Steps a task of this worker could not take (held, at a limit, moved on), and until when
    /// they are not tried again.
    cooling: HashMap<(RunId, StepKey), std::time::Instant>,
    /// Ready steps the last pass found no free slot for, in its order.
    backlog: VecDeque<(RunId, StepKey)>,
    /// With a queue: what it delivers and where ready steps go (see `queued`).
    queued: Option<queued::Queued>,
}

impl Instance {
    /// Works as a worker until `opts.cancel` (or, with `exit_when_idle`, until no run is left):
    /// takes queued runs, and starts, re-claims and ends steps of runs workers share (see the
    /// module docs). A run store out of reach is waited for, with backoff.
    pub async fn work(&self, opts: WorkerOptions) -> Result<WorkerReport, EngineError> {
        let queued = opts.queue.clone().map(queued::Queued::new);
        self.work_with(opts, queued).await
    }

    async fn work_with(
        &self,
        opts: WorkerOptions,
        queued: Option<queued::Queued>,
    ) -> Result<WorkerReport, EngineError> {
        let (pid, host) = (std::process::id(), crate::store::host_name());
        let mut w = Worker {
            engine: self.clone(),
            id: format!("{host}:{pid}:w"),
            slots: Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1))),
            opts: WorkerOptions {
                concurrency: opts.concurrency.max(1),
                ..opts
            },
            runs: HashMap::new(),
            tasks: JoinSet::new(),
            busy: HashSet::new(),
            report: WorkerReport::default(),
            listed: false,
            cooling: HashMap::new(),
            backlog: VecDeque::new(),
            queued,
        };
        tracing::info!(worker = %w.id, concurrency = w.opts.concurrency, pool = ?w.opts.pool, "worker started");
        let mut pause = w.opts.poll;
        let cancel = w.opts.cancel.clone();
        let mut last_pass: Option<std::time::Instant> = None;
        while !cancel.is_cancelled() {
            // A pass over the store when the last one left nothing ready to start, or every
            // `poll`: a fan-out's ready steps are started from the backlog as slots free up.
            let due = w.backlog.is_empty() || last_pass.is_none_or(|t| t.elapsed() >= w.opts.poll);
            let mut progressed = false;
            if due {
                last_pass = Some(std::time::Instant::now());
                progressed = match w.pass().await {
                    Ok(p) => {
                        pause = w.opts.poll;
                        p
                    }
                    Err(EngineError::Store(e)) => {
                        tracing::warn!("run store: {e}; trying again in {pause:?}");
                        pause = (pause * 2).min(Duration::from_secs(5));
                        false
                    }
                    Err(e) => return Err(e),
                };
            }
            progressed |= w.launch_backlog();
            if w.opts.exit_when_idle && !progressed && w.tasks.is_empty() && !w.listed {
                break;
            }
            w.poll_queue();
            if progressed && w.tasks.len() < w.opts.concurrency {
                // More may be ready at once (a fan-out): look again without pausing.
                w.drain();
                continue;
            }
            let polling = w.queued.as_mut().and_then(|q| q.polling.as_mut());
            tokio::select! {
                Some(j) = w.tasks.join_next(), if !w.tasks.is_empty() => w.joined(j),
                got = queued::delivered(polling) => w.delivered(got).await,
                _ = tokio::time::sleep(pause) => {}
                _ = cancel.cancelled() => {}
            }
            w.drain();
        }
        // Stopping: the steps under way finish (and are recorded) first.
        if let Some(p) = w.queued.as_mut().and_then(|q| q.polling.take()) {
            p.abort();
        }
        while let Some(j) = w.tasks.join_next().await {
            w.joined(j);
        }
        tracing::info!(worker = %w.id, steps = w.report.steps, "worker stopped");
        Ok(w.report)
    }
}

/// Whether a running step whose claim is `claim` may be re-claimed at `now_ms`: `Ok` with the dead
/// owner to take over from (none when the claim is gone or its lease ran out), `Err` with the live
/// owner that still holds it.
fn takeover(claim: Option<&StepClaim>, now_ms: i64) -> Result<Option<String>, String> {
    match claim {
        None => Ok(None),
        Some(c) if owner_is_dead(&c.owner) => Ok(Some(c.owner.clone())),
        Some(c) if c.lease_until_ms < now_ms => Ok(None),
        Some(c) => Err(c.owner.clone()),
    }
}

impl Worker {
    fn drain(&mut self) {
        while let Some(j) = self.tasks.try_join_next() {
            self.joined(j);
        }
    }

    fn joined(&mut self, joined: Result<Done, tokio::task::JoinError>) {
        match joined {
            Ok(done) => {
                let key = (done.run, done.step);
                self.busy.remove(&key);
                self.answer(&key, &done.report);
                if done.report.status == StepStatus::Pending {
                    let pause = self.opts.poll.max(Duration::from_millis(100));
                    self.cooling.insert(key, std::time::Instant::now() + pause);
                } else {
                    self.report.steps += 1;
                    self.report.reclaimed += done.reclaimed as usize;
                }
            }
            // Its claim runs out and another pass (here or elsewhere) re-claims the step.
            Err(e) => tracing::error!("a step task of this worker failed: {e}"),
        }
    }

    /// Whether `key` of `run` may be tried now (not cooling after a failed try).
    fn due(&mut self, run: &RunId, key: &StepKey) -> bool {
        let k = (run.clone(), key.clone());
        match self.cooling.get(&k) {
            Some(until) if *until > std::time::Instant::now() => false,
            Some(_) => {
                self.cooling.remove(&k);
                true
            }
            None => true,
        }
    }

    fn free(&self) -> bool {
        self.tasks.len() < self.opts.concurrency
    }

    /// Whether this worker takes steps of `key`'s asset (its `pool=` tag against `--pool`).
    fn in_pool(&self, key: &StepKey) -> bool {
        if self.queued.is_some() {
            // Queue workers take whatever the queue delivers.
            return true;
        }
        let pool = self.engine.project.assets.get(&key.asset).and_then(|a| {
            a.tags
                .iter()
                .find_map(|t| t.strip_prefix("pool=").map(str::trim))
        });
        pool == self.opts.pool.as_deref()
    }

    /// Whether this worker may take `key` of `run` now: no task of its own has it, it is in this
    /// worker's pool, and it is not cooling after a failed try.
    fn may_take(&mut self, run: &RunId, key: &StepKey) -> bool {
        !self.busy.contains(&(run.clone(), key.clone())) && self.in_pool(key) && self.due(run, key)
    }

    /// Starts ready steps the last pass left in the backlog while slots are free; whether any.
    fn launch_backlog(&mut self) -> bool {
        let mut launched = false;
        while self.free() {
            let Some((run, key)) = self.backlog.pop_front() else {
                break;
            };
            let Some(exec) = self
                .runs
                .get(&run)
                .and_then(|c| c.active.as_ref())
                .map(|a| a.exec.clone())
                .filter(|e| !e.run.cancel.is_cancelled())
            else {
                continue;
            };
            if !self.may_take(&run, &key) {
                continue;
            }
            self.spawn(&exec, key, None);
            launched = true;
        }
        launched
    }

    /// One pass over the runs workers share; whether anything was started or ended.
    async fn pass(&mut self) -> Result<bool, EngineError> {
        self.backlog.clear();
        let mut runs = self.engine.store.worker_runs(self.owner()).await?;
        if let Some(only) = self.queued.as_ref().and_then(|q| q.only.clone()) {
            runs.retain(|r| r.run_id == only);
        }
        runs.sort_by_key(|r| std::cmp::Reverse(take::priority(r)));
        let live: HashSet<RunId> = runs.iter().map(|r| r.run_id.clone()).collect();
        let busy: HashSet<RunId> = self.busy.iter().map(|(r, _)| r.clone()).collect();
        // Runs that ended (or were cancelled) elsewhere.
        self.runs
            .retain(|id, _| live.contains(id) || busy.contains(id));
        let mut progressed = false;
        self.listed = !runs.is_empty();
        // A backfill's chunks run in their order: a chunk waits while an earlier one is not done.
        let mut backfills_busy: HashSet<String> = HashSet::new();
        for mut run in runs {
            let backfill = run
                .launched_by
                .as_deref()
                .and_then(|b| b.strip_prefix("backfill:"))
                .map(str::to_string);
            if let Some(b) = backfill {
                if !backfills_busy.insert(b) && run.status == RunStatus::Queued {
                    continue;
                }
            }
            if run.status != RunStatus::Running {
                if !self.free() && self.queued.is_none() {
                    continue;
                }
                if self.take(&run).await? {
                    progressed = true;
                } else {
                    // Taken meanwhile: by another worker (then shared) or by an executor.
                    run = self.engine.store.get_run(run.run_id.as_str()).await?;
                    if run.status != RunStatus::Running
                        || run.owner.as_deref() != Some(self.owner())
                    {
                        continue;
                    }
                }
            }
            progressed |= self.advance(&run).await?;
        }
        Ok(progressed)
    }

    /// Moves `run` on as far as this worker can: skips, starts, re-claims, and its end.
    async fn advance(&mut self, run: &RunRecord) -> Result<bool, EngineError> {
        let run_id = &run.run_id;
        let steps = self.engine.store.steps(run_id).await?;
        if !self.runs.contains_key(run_id) {
            match self.open(run, &steps).await? {
                Some(ctx) => self.runs.insert(run_id.clone(), ctx),
                None => return Ok(true),
            };
        }
        let ctx = &self.runs[run_id];
        let cancelled = ctx
            .active
            .as_ref()
            .is_some_and(|a| a.exec.run.cancel.is_cancelled());
        let next = ready::next(&steps, &ctx.upstream, cancelled);
        let mut progressed = false;
        // An executor only for a run this worker has something to do in.
        let work = !next.skip.is_empty()
            || next.ready.iter().any(|k| self.in_pool(k))
            || next.running.iter().any(|r| self.in_pool(&r.step_key()));
        let exec = match work {
            true => self.executor(run_id).await?,
            false => None,
        };
        let Some(exec) = exec else {
            return self.end_if_done(run_id, next.end).await;
        };
        for (key, up) in next.skip {
            let (status, reason) = if cancelled {
                (
                    StepStatus::Cancelled,
                    "run cancelled before the step started".to_string(),
                )
            } else {
                (
                    StepStatus::Skipped,
                    format!("upstream '{up}' did not succeed"),
                )
            };
            exec.end_step(StepReport::new(&key), status, None, Some(reason))
                .await?;
            progressed = true;
        }
        for key in next.ready {
            if cancelled {
                let reason = Some("run cancelled before the step started".to_string());
                exec.end_step(StepReport::new(&key), StepStatus::Cancelled, None, reason)
                    .await?;
                progressed = true;
                continue;
            }
            if self.queued.is_some() {
                progressed |= self.submit(run_id, &key).await;
                continue;
            }
            if !self.free() {
                self.backlog.push_back((run_id.clone(), key));
                continue;
            }
            if !self.may_take(run_id, &key) {
                continue;
            }
            self.spawn(&exec, key, None);
            progressed = true;
        }
        if !next.running.is_empty() && (self.free() || self.queued.is_some()) {
            let now = self.engine.clock.now_ms();
            let claims: HashMap<StepKey, StepClaim> = self
                .engine
                .store
                .run_claims(run_id)
                .await?
                .into_iter()
                .map(|c| (c.step.clone(), c))
                .collect();
            for rec in next.running {
                let key = rec.step_key();
                if (!self.free() && self.queued.is_none()) || !self.may_take(run_id, &key) {
                    continue;
                }
                let Ok(takeover) = takeover(claims.get(&key), now) else {
                    continue;
                };
                if self.queued.is_some() {
                    // Its task went silent, or is gone: hand it over again (a worker re-claims it).
                    progressed |= self.submit(run_id, &key).await;
                    continue;
                }
                self.spawn(&exec, key, Some((rec, takeover)));
                progressed = true;
            }
        }
        progressed |= self.end_if_done(run_id, next.end).await?;
        Ok(progressed)
    }

    /// Records `run_id`'s end (or its wait) when nothing is left in it and this worker has no task
    /// in it, and forgets it; whether it did.
    async fn end_if_done(
        &mut self,
        run_id: &RunId,
        end: Option<ready::RunEnd>,
    ) -> Result<bool, EngineError> {
        let mine = self.busy.iter().any(|(r, _)| r == run_id);
        let Some(end) = end.filter(|_| !mine) else {
            return Ok(false);
        };
        let ev = NewEvent::of(run_id, None, end.message, &end.event);
        let ended = self
            .engine
            .store
            .end_run(run_id, end.status, end.error.as_deref(), ev)
            .await?;
        if ended {
            self.report.runs_ended += 1;
            tracing::info!(run_id = %run_id, status = %end.status, "{}", end.message);
        }
        if let Some(ctx) = self.runs.remove(run_id) {
            if ctx.active.is_some() {
                let _ = tokio::fs::remove_dir_all(self.engine.run_scratch(run_id)).await;
            }
        }
        Ok(true)
    }

    /// Starts a task for `key`: a ready step, or (`reclaim`: its record and the dead owner to take
    /// over from) a running one whose owner's lease ran out.
    fn spawn(
        &mut self,
        exec: &Executor,
        key: StepKey,
        reclaim: Option<(StepRecord, Option<String>)>,
    ) {
        let run = exec.run.run_id.clone();
        self.busy.insert((run.clone(), key.clone()));
        let exec = exec.clone();
        let span = tracing::info_span!("step", run_id = %run, step_id = %key, asset = %key.asset, worker = %self.id);
        self.tasks.spawn(
            async move {
                let reclaimed = reclaim.is_some();
                let report = match reclaim {
                    // Not started without knowing what its upstreams are now: a later pass tries.
                    None => match exec.refresh_latest(&key).await {
                        Ok(()) => exec.run_step(key.clone()).await,
                        Err(e) => {
                            tracing::warn!("cannot read {key}'s upstreams from the store: {e}");
                            StepReport::new(&key)
                        }
                    },
                    Some((rec, takeover)) => exec.reclaim(rec, takeover).await,
                };
                // Still held: its end was not recorded (the store failed). Let it go, so that it is
                // re-claimed and reconciled with its table.
                let report = if exec.run.claims.holds(&key) {
                    exec.release_unrecorded(&key).await;
                    StepReport::new(&key)
                } else {
                    report
                };
                Done {
                    run,
                    step: key,
                    report,
                    reclaimed,
                }
            }
            .instrument(span),
        );
    }
}
