//! The worker protocol half of the run store: what `assets worker` processes on many machines use to
//! share the steps of queued runs. Every state change is guarded by the state the caller saw, in the
//! same transaction that changes it, so two workers acting on one stale view never both start, end
//! or re-claim the same step, and a run ends once.

use super::{NewEvent, RunRecord, RunStatus, StartedAttempt, StepClaim, StepOutcome, StoreResult};
use crate::key::{RunId, StepKey};
use async_trait::async_trait;

/// The `owner` of a run that workers execute step by step: no single process holds it, so it is
/// never settled as interrupted; a dead worker's steps are re-claimed instead.
pub const WORKERS_OWNER: &str = "spine:workers";

/// The `owner` of a run whose steps are handed to a queue (`[executor] kind = "temporal"`): like
/// [`WORKERS_OWNER`], no single process holds it; queue workers (`assets worker --temporal`) move it
/// on and plain workers leave it alone.
pub const QUEUE_OWNER: &str = "spine:queue";

/// What a guarded claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed<T> {
    /// The caller holds the step's claim now, and did what it asked.
    Got(T),
    /// Another owner holds the claim and its lease has not run out.
    Held(StepClaim),
    /// Starting it now would pass this concurrency limit (its key): nothing changed.
    Limited(String),
    /// The step is no longer in the state the caller saw (another worker started, re-claimed or
    /// ended it): nothing changed.
    Moved,
}

/// Concurrency limits a step's claim counts against: at most `max` live claims carry each key
/// (`tag:warehouse=heavy` for an asset tag, `run:ID` for a run's own maximum).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimLimits(pub Vec<(String, i64)>);

impl ClaimLimits {
    /// The limits in key order (so transactions lock them in one order).
    pub fn new(mut limits: Vec<(String, i64)>) -> Self {
        limits.sort();
        limits.dedup_by(|a, b| a.0 == b.0);
        ClaimLimits(limits)
    }

    /// How a claim row lists them: `,key,key,` (empty without limits).
    pub fn listed(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        format!(",{},", keys.join(","))
    }
}

/// The worker half of the run store.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Runs workers may work on, oldest first: queued ones, waiting ones with a signalled step (one
    /// that ran before and is pending again; steps behind a parked one are pending but never
    /// started), and running ones whose owner is `owner` ([`WORKERS_OWNER`] or [`QUEUE_OWNER`]).
    async fn worker_runs(&self, owner: &str) -> StoreResult<Vec<RunRecord>>;
    /// The claims held on steps of run `run_id` (whoever holds them, live or not).
    async fn run_claims(&self, run_id: &RunId) -> StoreResult<Vec<StepClaim>>;
    /// Takes the claim on `claim.step` and starts attempt `attempt` of the run's step, in one
    /// transaction — only when the step is still `pending` (attempt 1) or `running` its attempt
    /// `attempt - 1` (a retry, or a re-claim of a dead owner's attempt), and when fewer than each
    /// limit's maximum of live claims carry its key (the claim then carries them).
    async fn start_ready_step(
        &self,
        claim: &StepClaim,
        limits: &ClaimLimits,
        attempt: i64,
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Claimed<StartedAttempt>>;
    /// Takes over the claim of a step that is `running` attempt `attempt` with sequence number
    /// `seq` under an owner whose lease ran out (or `takeover_from`, an owner known dead), with
    /// `event`; the step itself is unchanged (the new owner reconciles it with the warehouse).
    async fn reclaim_step(
        &self,
        claim: &StepClaim,
        (attempt, seq): (i64, i64),
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Claimed<()>>;
    /// Records how a started step ended ([`RunStore::finish_step`](super::RunStore::finish_step)),
    /// only while `owner` holds its claim; false (nothing written) when another owner re-claimed it.
    async fn finish_claimed_step(
        &self,
        owner: &str,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<Option<Option<i64>>>;
    /// Ends a step that is still `pending` (skipped or cancelled before it started); false when it
    /// is not pending any more.
    async fn end_pending_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<bool>;
    /// Moves a `running` run to `status` (an end, or `waiting`), with its error and event; false when
    /// it is not running (another worker ended it first).
    async fn end_run(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        event: NewEvent,
    ) -> StoreResult<bool>;
}
