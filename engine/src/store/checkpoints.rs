//! Agent checkpoints (issue 31): each completed node of an agent step's case, stored as it completes,
//! so a killed or resumed step continues from its last completed node and never repeats a completed
//! (paid) model call. Checkpoints are keyed by what the work is — the step key, the case, the code
//! version and the versions of the inputs read — not by run or attempt, so the next run after a crash
//! resumes the same work, and a change of code or input data starts afresh. Each checkpoint holds what
//! its node changed, not the whole state again (LangGraph's checkpoint tables grow quadratically with
//! a case's length because each stores the state whole). `assets gc` prunes old ones
//! (`RetentionStore::prune`).

use super::StoreResult;
use crate::key::StepKey;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The work a checkpoint belongs to: one case of an agent step under one code version and inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckpointKey {
    /// The agent asset (partition).
    pub step: StepKey,
    /// The case: one input row's id.
    pub case_id: String,
    /// The step's code version (graph, prompts, model name and base URL).
    pub code_version: String,
    /// A digest of the input versions read.
    pub inputs: String,
}

/// One completed node of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its place in the case's run of nodes (0, 1, …; a node visited twice has two).
    pub position: i64,
    /// The node.
    pub node: String,
    /// What the node changed in the case's state.
    pub delta: serde_json::Value,
    /// When it was stored.
    pub created_at: String,
}

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
}
