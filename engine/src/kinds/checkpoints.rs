//! What a kind sees of the run store's checkpoints ([`StepContext::checkpoints`](super::StepContext)):
//! the completed parts of its work, stored as each completes, keyed by the work itself (step, case,
//! code version, inputs read) so a crashed or retried step continues where it was. The store half
//! behind it is `store::CheckpointStore` (ADR 0028).

use crate::key::StepKey;
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

/// The checkpoints of the run store, as a kind uses them; errors are sentences (the store could not
/// be reached: the step fails retryably, and its next attempt continues from what was stored).
#[async_trait::async_trait]
pub trait Checkpoints: Send + Sync {
    /// Stores that the node at `position` of the work under `key` completed as `node` with `delta`;
    /// false when that position was stored already (the first result stays).
    async fn put(
        &self,
        key: &CheckpointKey,
        position: i64,
        node: &str,
        delta: &serde_json::Value,
    ) -> Result<bool, String>;
    /// The completed nodes of the work under `key`, in position order.
    async fn load(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, String>;
}
