//! Agent checkpoints (issue 31): each completed node of an agent step's case, stored as it completes,
//! so a killed or resumed step continues from its last completed node and never repeats a completed
//! (paid) model call. Checkpoints are keyed by what the work is — the step key, the case, the code
//! version and the versions of the inputs read — not by run or attempt, so the next run after a crash
//! resumes the same work, and a change of code or input data starts afresh. Each checkpoint holds what
//! its node changed, not the whole state again (LangGraph's checkpoint tables grow quadratically with
//! a case's length because each stores the state whole). `assets gc` prunes old ones
//! (`RetentionStore::prune`). What a run's steps paid for fresh model calls is added up per run
//! (`run_spend`), for run budgets.

use super::StoreResult;
use crate::key::{RunId, StepKey};
pub use crate::kinds::checkpoints::{Checkpoint, CheckpointKey, RunSpend};
use async_trait::async_trait;

/// The checkpoint half of the run store.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Stores that the node at `position` of the case under `key` completed as `node` with `delta`.
    /// A position stored already keeps what it holds (a resumed step that did the node again does not
    /// overwrite the first result); false then.
    async fn put_checkpoint(
        &self,
        key: &CheckpointKey,
        position: i64,
        node: &str,
        delta: &serde_json::Value,
    ) -> StoreResult<bool>;
    /// The completed nodes of the case under `key`, in position order.
    async fn checkpoints(&self, key: &CheckpointKey) -> StoreResult<Vec<Checkpoint>>;
    /// Adds what step `step` of run `run` just paid (`tokens`, `cost`; zero to only read) to the
    /// run's spend, and returns what the run's steps paid together since it started. Pruned with
    /// the run's records.
    async fn add_run_spend(
        &self,
        run: &RunId,
        step: &StepKey,
        tokens: i64,
        cost: f64,
    ) -> StoreResult<RunSpend>;
}
