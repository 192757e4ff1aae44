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
    /// Adds what `step` of `run` just paid (zero: only reads) and returns what the run's steps
    /// paid together.
    async fn spend(
        &self,
        run: &crate::key::RunId,
        step: &StepKey,
        tokens: i64,
        cost: f64,
    ) -> Result<RunSpend, String>;
}

/// What a run's steps paid together for model calls they made (resumed work is not paid again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSpend {
    /// Prompt and completion tokens.
    pub tokens: i64,
    /// Their cost, by the project's prices.
    pub cost: f64,
}

/// A run's budget (`[budgets]` in spine.toml, or the run's `budget_tokens` / `budget_cost` tags):
/// what its steps may pay together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunBudget {
    /// Tokens.
    pub tokens: Option<i64>,
    /// Cost.
    pub cost: Option<f64>,
}

impl RunBudget {
    /// The budget of a run with `tags` in a project whose `[budgets]` is `defaults`: a tag that is
    /// a non-negative number overrides (the CLI refuses others, E0113).
    pub fn of_run(
        defaults: &spine_schemas::definitions::BudgetsSection,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> RunBudget {
        let tag = |k: &str| tags.get(k).map(|v| v.trim().to_string());
        RunBudget {
            tokens: tag("budget_tokens")
                .and_then(|v| v.parse().ok())
                .filter(|t: &i64| *t >= 0)
                .or(defaults.run_tokens),
            cost: tag("budget_cost")
                .and_then(|v| v.parse().ok())
                .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                .or(defaults.run_cost),
        }
    }

    /// Whether any budget is set.
    pub fn is_set(&self) -> bool {
        self.tokens.is_some() || self.cost.is_some()
    }
}
