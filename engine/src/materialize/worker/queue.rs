//! The executor seam: where the ready steps of a run go to be executed. In process (the default) a
//! run's executor or a worker starts them itself; with a [`StepQueue`] (`[executor] kind =
//! "temporal"`) the ready steps are handed to a queue as tasks, and queue workers on any machine
//! take them, run them through the same step protocol (claims, attempts, the Delta `txn`) and say
//! how they ended. The queue owns delivery (retries of a task whose worker went silent, heartbeats,
//! timeouts); the run store still records every state change and stays the one truth about a run.
//!
//! [`InProcessQueue`] is the seam's first implementation: a queue in this process's memory, which
//! the engine's tests use to drive queue workers without a server. The Temporal one (standalone
//! activities on a task queue) is `spine_jobs::temporal::queue`.

use crate::key::{RunId, StepKey};
use crate::store::StepStatus;
use async_trait::async_trait;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One step of one run, handed to a queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StepTask {
    /// The run.
    pub run_id: String,
    /// The step's id (its step key as text: `asset` or `asset[partition]`).
    pub step_id: String,
}

impl StepTask {
    /// The task of `key` in `run`.
    pub fn of(run: &RunId, key: &StepKey) -> Self {
        StepTask {
            run_id: run.as_str().to_string(),
            step_id: key.to_string(),
        }
    }

    /// A name for the task that is the same every time it is handed over (a queue's idempotency
    /// key): `spine:RUN:STEP`.
    pub fn id(&self) -> String {
        format!("spine:{}:{}", self.run_id, self.step_id)
    }
}

/// A task a worker took, and the queue's token for answering it.
#[derive(Debug, Clone)]
pub struct TakenTask {
    /// The step.
    pub task: StepTask,
    /// The queue's handle on this delivery of it.
    pub token: Vec<u8>,
    /// Which delivery this is (1 the first; more after a worker went silent or asked to retry).
    pub delivery: u32,
}

/// How a worker answers a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// The step has ended (this worker ended it, or someone had): the task is done.
    Ended(StepStatus),
    /// Nothing could be done yet (another live worker holds the step, its upstreams are not all
    /// there): deliver it again later.
    Retry(String),
    /// The task can never be done (no such run or step here): do not deliver it again.
    Refused(String),
}

/// A queue failed (unreachable, refused a request).
#[derive(Debug, thiserror::Error)]
#[error("step queue: {0}")]
pub struct QueueError(pub String);

/// Where ready steps go when they are not run in this process.
#[async_trait]
pub trait StepQueue: Send + Sync {
    /// What it is, for messages (`temporal 127.0.0.1:7233, task queue spine`).
    fn describe(&self) -> String;
    /// Hands `task` over. Idempotent: handing over a task that is waiting or under way again does
    /// nothing; one that finished is handed over anew (its worker finds the step's state in the
    /// store and answers at once when it has ended).
    async fn submit(&self, task: &StepTask) -> Result<(), QueueError>;
    /// The next task for this worker; `None` when none came within the queue's poll (or `cancel`).
    async fn take(&self, cancel: &CancellationToken) -> Result<Option<TakenTask>, QueueError>;
    /// Tells the queue the task is still being worked on.
    async fn heartbeat(&self, token: &[u8]) -> Result<(), QueueError>;
    /// Answers a task.
    async fn finish(&self, token: &[u8], outcome: TaskOutcome) -> Result<(), QueueError>;
    /// How often a worker heartbeats its tasks.
    fn heartbeat_every(&self) -> Duration {
        Duration::from_secs(3)
    }
}

/// A queue in this process's memory: tasks wait in order, a task is out with one taker at a time,
/// and one answered `Retry` waits `retry_after` before it is delivered again.
pub struct InProcessQueue {
    inner: Mutex<Inner>,
    notify: tokio::sync::Notify,
    retry_after: Duration,
    poll: Duration,
}

#[derive(Default)]
struct Inner {
    waiting: VecDeque<(StepTask, u32)>,
    /// Tasks waiting or out, by id.
    live: HashSet<StepTask>,
    out: std::collections::HashMap<Vec<u8>, (StepTask, u32)>,
    next_token: u64,
    submitted: usize,
}

impl Default for InProcessQueue {
    fn default() -> Self {
        InProcessQueue {
            inner: Mutex::default(),
            notify: tokio::sync::Notify::new(),
            retry_after: Duration::from_millis(100),
            poll: Duration::from_millis(200),
        }
    }
}

impl InProcessQueue {
    /// How many times a task was handed over that was not waiting or out already.
    pub fn submitted(&self) -> usize {
        self.inner.lock().expect("queue lock").submitted
    }
}

#[async_trait]
impl StepQueue for InProcessQueue {
    fn describe(&self) -> String {
        "in-process queue".into()
    }

    async fn submit(&self, task: &StepTask) -> Result<(), QueueError> {
        let mut q = self.inner.lock().expect("queue lock");
        if q.live.insert(task.clone()) {
            q.submitted += 1;
            q.waiting.push_back((task.clone(), 1));
            self.notify.notify_one();
        }
        Ok(())
    }

    async fn take(&self, cancel: &CancellationToken) -> Result<Option<TakenTask>, QueueError> {
        let deadline = tokio::time::Instant::now() + self.poll;
        loop {
            let notified = self.notify.notified();
            {
                let mut q = self.inner.lock().expect("queue lock");
                if let Some((task, delivery)) = q.waiting.pop_front() {
                    q.next_token += 1;
                    let token = q.next_token.to_be_bytes().to_vec();
                    q.out.insert(token.clone(), (task.clone(), delivery));
                    return Ok(Some(TakenTask {
                        task,
                        token,
                        delivery,
                    }));
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = cancel.cancelled() => return Ok(None),
            }
        }
    }

    async fn heartbeat(&self, _token: &[u8]) -> Result<(), QueueError> {
        Ok(())
    }

    async fn finish(&self, token: &[u8], outcome: TaskOutcome) -> Result<(), QueueError> {
        let found = self.inner.lock().expect("queue lock").out.remove(token);
        let Some((task, delivery)) = found else {
            return Err(QueueError("no such task is out".into()));
        };
        match outcome {
            TaskOutcome::Ended(_) | TaskOutcome::Refused(_) => {
                self.inner.lock().expect("queue lock").live.remove(&task);
            }
            TaskOutcome::Retry(_) => {
                tokio::time::sleep(self.retry_after).await;
                let mut q = self.inner.lock().expect("queue lock");
                q.waiting.push_back((task, delivery + 1));
                self.notify.notify_one();
            }
        }
        Ok(())
    }
}
