//! Operator control of runs: cancelling one. A queued or parked run has no process working on it, so
//! it is cancelled in the store at once; a running one gets a request its executor polls.

use super::{RunStatus, StoreResult};
use crate::key::RunId;
use async_trait::async_trait;
use std::collections::HashMap;

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued or parked: it is `cancelled` now, with its pending steps.
    Cancelled,
    /// The run is running: its executor cancels the steps that have not committed.
    Requested,
    /// The run had already ended (with this status); nothing changed.
    Ended(RunStatus),
}

/// What the CLI and the UI read of run control: each run's progress. Nothing here changes state.
#[async_trait]
pub trait ControlReads: Send + Sync {
    /// For each of `runs` that has steps: (steps that ended, steps), in one query.
    async fn run_progress(&self, runs: &[RunId]) -> StoreResult<HashMap<RunId, (usize, usize)>>;
}

/// The control half of the run store.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Cancels run `run_id` (see [`CancelOutcome`]), with an event, in one transaction.
    async fn cancel_run(&self, run_id: &RunId, why: &str) -> StoreResult<CancelOutcome>;
    /// Whether a cancel of the run was requested.
    async fn cancel_requested(&self, run_id: &RunId) -> StoreResult<bool>;
}
