//! A worker with a [`StepQueue`] (`assets worker --temporal`, and `assets materialize` with
//! `[executor] kind = "temporal"`): its passes over the store hand every ready step (and every
//! running step whose owner's lease ran out) to the queue instead of starting it, and the tasks the
//! queue delivers are executed here through the same step protocol as a plain worker's — a ready
//! step is started under a claim, a dead owner's step is re-claimed and reconciled with its table.
//! The queue decides who works on what and redelivers a task whose worker went silent; the store
//! decides what a step may do, so a task delivered twice never runs a step twice.

use super::super::*;
use super::queue::{StepQueue, StepTask, TakenTask, TaskOutcome};
use super::{ready, Worker};
use crate::store::{StepClaim, QUEUE_OWNER, WORKERS_OWNER};
use tokio::task::JoinHandle;
use tokio_util::sync::DropGuard;

/// Hand a step over again when it is still waiting this long after the last time.
const RESUBMIT: Duration = Duration::from_secs(30);

type Polling = JoinHandle<Result<Option<TakenTask>, super::QueueError>>;

/// A queue worker's state beyond a plain worker's.
pub(super) struct Queued {
    queue: Arc<dyn StepQueue>,
    /// The poll for the next task, while one is out.
    pub(super) polling: Option<Polling>,
    /// When this worker last handed each step over.
    submitted: HashMap<(RunId, StepKey), std::time::Instant>,
    /// The task each running step answers, and the guard that keeps its heartbeat going.
    tokens: HashMap<(RunId, StepKey), (Vec<u8>, DropGuard)>,
    /// Whether this process takes tasks (a worker) or only hands steps over (`materialize`).
    pub(super) takes_tasks: bool,
    /// Only this run (`materialize`).
    pub(super) only: Option<RunId>,
}

impl Queued {
    pub(super) fn new(queue: Arc<dyn StepQueue>) -> Self {
        Queued {
            queue,
            polling: None,
            submitted: HashMap::new(),
            tokens: HashMap::new(),
            takes_tasks: true,
            only: None,
        }
    }
}

/// What the poll out (if any) brought; pending forever without one.
pub(super) async fn delivered(polling: Option<&mut Polling>) -> Result<Option<TakenTask>, String> {
    match polling {
        Some(p) => match p.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the poll task failed: {e}")),
        },
        None => std::future::pending().await,
    }
}

impl Worker {
    /// The owner of the runs this worker moves on.
    pub(super) fn owner(&self) -> &'static str {
        match self.queued {
            Some(_) => QUEUE_OWNER,
            None => WORKERS_OWNER,
        }
    }

    /// Starts a poll for the next task when this worker takes tasks, has a free slot and has no
    /// poll out.
    pub(super) fn poll_queue(&mut self) {
        let Some(q) = self.queued.as_mut() else {
            return;
        };
        // A step task that died without a report (a panic) leaves its task: deliver it again.
        let lost: Vec<Vec<u8>> = q
            .tokens
            .extract_if(|k, _| !self.busy.contains(k))
            .map(|(_, (token, _beat))| token)
            .collect();
        for token in lost {
            self.send(
                token,
                TaskOutcome::Retry("its step task here failed".into()),
            );
        }
        let (free, cancel) = (self.free(), self.opts.cancel.clone());
        let Some(q) = self.queued.as_mut() else {
            return;
        };
        if !q.takes_tasks || !free || q.polling.is_some() || cancel.is_cancelled() {
            return;
        }
        let queue = q.queue.clone();
        q.polling = Some(tokio::spawn(async move { queue.take(&cancel).await }));
    }

    /// Hands `key` of `run` to the queue unless this worker did so within [`RESUBMIT`]; whether it
    /// did.
    pub(super) async fn submit(&mut self, run: &RunId, key: &StepKey) -> bool {
        let Some(q) = self.queued.as_mut() else {
            return false;
        };
        let k = (run.clone(), key.clone());
        if q.submitted.get(&k).is_some_and(|t| t.elapsed() < RESUBMIT) {
            return false;
        }
        match q.queue.submit(&StepTask::of(run, key)).await {
            Ok(()) => {
                tracing::info!(run_id = %run, step = %key, "handed to {}", q.queue.describe());
                q.submitted.insert(k, std::time::Instant::now());
                true
            }
            Err(e) => {
                tracing::warn!(run_id = %run, step = %key, "cannot hand the step over: {e}");
                false
            }
        }
    }

    /// A poll came back: serves its task, if any, and lets the next poll go out.
    pub(super) async fn delivered(&mut self, got: Result<Option<TakenTask>, String>) {
        if let Some(q) = self.queued.as_mut() {
            q.polling = None;
        }
        match got {
            Ok(Some(taken)) => self.serve(taken).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("cannot take a task from the queue: {e}");
                tokio::time::sleep(self.opts.poll.max(Duration::from_millis(500))).await;
            }
        }
    }

    /// Works on a delivered task: starts or re-claims its step, or answers at once when there is
    /// nothing to do (the step ended) or nothing yet (its upstreams are not done, another live
    /// worker holds it).
    async fn serve(&mut self, taken: TakenTask) {
        let TakenTask {
            task,
            token,
            delivery,
        } = taken;
        tracing::info!(run_id = %task.run_id, step = %task.step_id, delivery, "took a task");
        let outcome = match self.start_task(&task, &token).await {
            Ok(None) => return,
            Ok(Some(o)) => o,
            Err(e) => TaskOutcome::Retry(format!("cannot read the run store: {e}")),
        };
        self.send(token, outcome);
    }

    /// Starts the task's step under this worker (`None`: started; the task is answered when it
    /// ends), or how to answer the task now.
    async fn start_task(
        &mut self,
        task: &StepTask,
        token: &[u8],
    ) -> Result<Option<TaskOutcome>, EngineError> {
        let store = self.engine.store.clone();
        let run = match store.get_run(&task.run_id).await {
            Ok(r) if r.run_id.as_str() == task.run_id => r,
            Ok(_) | Err(crate::error::StoreError::UnknownRun { .. }) => {
                return Ok(Some(TaskOutcome::Refused(format!(
                    "no run {} in this worker's run store",
                    task.run_id
                ))))
            }
            Err(e) => return Err(e.into()),
        };
        let steps = store.steps(&run.run_id).await?;
        let Some(rec) = steps.iter().find(|s| s.step_id == task.step_id).cloned() else {
            return Ok(Some(TaskOutcome::Refused(format!(
                "run {} has no step {}",
                task.run_id, task.step_id
            ))));
        };
        let key = rec.step_key();
        let k = (run.run_id.clone(), key.clone());
        if self.busy.contains(&k) {
            // Delivered again while this worker works on it (its heartbeat was missed): this
            // delivery is the one to answer.
            self.track(&k, token);
            return Ok(None);
        }
        if run.status != RunStatus::Running || run.owner.as_deref() != Some(QUEUE_OWNER) {
            return Ok(Some(match rec.status {
                StepStatus::Pending | StepStatus::Running => {
                    TaskOutcome::Retry(format!("run {} is {}", run.run_id, run.status))
                }
                s => TaskOutcome::Ended(s),
            }));
        }
        if !self.runs.contains_key(&run.run_id) {
            match self.open(&run, &steps).await? {
                Some(ctx) => self.runs.insert(run.run_id.clone(), ctx),
                None => return Ok(Some(TaskOutcome::Ended(StepStatus::Failed))),
            };
        }
        let Some(exec) = self.executor(&run.run_id).await? else {
            return Ok(Some(TaskOutcome::Retry("run not open here".into())));
        };
        match rec.status {
            StepStatus::Pending => {
                let next = ready::next(&steps, &self.runs[&run.run_id].upstream, false);
                if next.ready.contains(&key) {
                    self.spawn(&exec, key, None);
                    self.track(&k, token);
                    Ok(None)
                } else if next.skip.iter().any(|(s, _)| *s == key) {
                    // A pass records the skip.
                    Ok(Some(TaskOutcome::Ended(StepStatus::Skipped)))
                } else {
                    Ok(Some(TaskOutcome::Retry(
                        "its upstreams are not done".into(),
                    )))
                }
            }
            StepStatus::Running => {
                let claim: Option<StepClaim> = store
                    .run_claims(&run.run_id)
                    .await?
                    .into_iter()
                    .find(|c| c.step == key);
                let takeover = match super::takeover(claim.as_ref(), self.engine.clock.now_ms()) {
                    Ok(t) => t,
                    Err(owner) => return Ok(Some(TaskOutcome::Retry(format!("{owner} holds it")))),
                };
                self.spawn(&exec, key, Some((rec, takeover)));
                self.track(&k, token);
                Ok(None)
            }
            s => Ok(Some(TaskOutcome::Ended(s))),
        }
    }

    /// Remembers that `k`'s step answers the task `token`, and heartbeats it until answered.
    fn track(&mut self, k: &(RunId, StepKey), token: &[u8]) {
        let Some(q) = self.queued.as_mut() else {
            return;
        };
        let stop = CancellationToken::new();
        let (queue, beat, t) = (q.queue.clone(), stop.clone(), token.to_vec());
        tokio::spawn(async move {
            let every = queue.heartbeat_every();
            loop {
                tokio::select! {
                    _ = beat.cancelled() => break,
                    _ = tokio::time::sleep(every) => {
                        if let Err(e) = queue.heartbeat(&t).await {
                            tracing::warn!("cannot heartbeat a task: {e}");
                        }
                    }
                }
            }
        });
        q.tokens
            .insert(k.clone(), (token.to_vec(), stop.drop_guard()));
    }

    /// A step task of this worker ended: answers the task it was started for, if any.
    pub(super) fn answer(&mut self, k: &(RunId, StepKey), report: &StepReport) {
        let Some((token, beat)) = self.queued.as_mut().and_then(|q| q.tokens.remove(k)) else {
            return;
        };
        drop(beat);
        let outcome = match report.status {
            // Not taken after all (held, at a limit, moved on): deliver it again later.
            StepStatus::Pending => {
                TaskOutcome::Retry("not started: another worker or a limit".into())
            }
            s => TaskOutcome::Ended(s),
        };
        self.send(token, outcome);
    }

    /// Answers a task without holding up the worker.
    fn send(&self, token: Vec<u8>, outcome: TaskOutcome) {
        let Some(q) = self.queued.as_ref() else {
            return;
        };
        let queue = q.queue.clone();
        tokio::spawn(async move {
            if let Err(e) = queue.finish(&token, outcome).await {
                // The queue delivers it again once its heartbeat runs out; the step's state is in
                // the store, so that delivery is answered at once.
                tracing::warn!("cannot answer a task: {e}");
            }
        });
    }
}

impl Instance {
    /// Executes the queued run `run_id` through `queue` (`[executor] kind = "temporal"`): takes it
    /// for the queue, hands each step over as it becomes ready, records skips and the run's end, and
    /// returns once the run has ended or waits for signals. The steps run wherever the queue's
    /// workers are; this process only moves the run on, and any queue worker does the same, so the
    /// run goes on when this process stops (at `cancel`, or killed).
    pub async fn dispatch(
        &self,
        run_id: &RunId,
        queue: Arc<dyn StepQueue>,
        poll: Duration,
        cancel: CancellationToken,
    ) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let mut q = Queued::new(queue);
        q.takes_tasks = false;
        q.only = Some(run_id.clone());
        let opts = super::WorkerOptions {
            concurrency: 1,
            pool: None,
            poll,
            exit_when_idle: true,
            cancel,
            queue: None,
        };
        self.work_with(opts, Some(q)).await?;
        let run = self.store.get_run(run_id.as_str()).await?;
        let steps = self
            .store
            .steps(run_id)
            .await?
            .into_iter()
            .map(|s| {
                let mut r = StepReport::new(&s.step_key());
                r.status = s.status;
                r.attempts = s.attempt.max(0) as u32;
                r.error = s.error;
                r.reason = s.reason;
                r
            })
            .collect();
        Ok(RunReport {
            run_id: run_id.clone(),
            status: run.status,
            steps,
            duration_ms: started.elapsed().as_millis(),
        })
    }
}
