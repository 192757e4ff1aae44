//! What the run store keeps of asset checks: each check's outcome per materialization (recorded with
//! the materialization, or later by `assets checks`), and explicit publications of versions a check
//! held back.

use super::{Materialization, StoreResult};
use crate::key::{AssetKey, RunId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use spine_schemas::events::CheckSeverity;

/// A recorded check outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The materialization checked.
    pub materialization_id: i64,
    /// Its step (`asset` or `asset[partition]`).
    pub step_id: String,
    /// The run that ran it (none: `assets checks`).
    pub run_id: Option<RunId>,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: CheckOutcome,
    /// When.
    pub created_at: String,
}

/// What the CLI and the UI read of checks: the results recorded with a materialization or a run.
/// Nothing here changes state.
#[async_trait]
pub trait CheckReads: Send + Sync {
    /// The latest outcome of each check of materialization `id`.
    async fn check_results(&self, id: i64) -> StoreResult<Vec<CheckRecord>>;
    /// The outcomes recorded by run `run_id`, in order.
    async fn run_check_results(&self, run_id: &RunId) -> StoreResult<Vec<CheckRecord>>;
}

/// The checks half of the run store.
#[async_trait]
pub trait CheckStore: Send + Sync {
    /// Records outcomes of checks run on materialization `id` outside a run.
    async fn record_checks(&self, id: i64, outcomes: &[CheckOutcome]) -> StoreResult<()>;
    /// The materialization of `key` (a partition of it) that wrote Delta `version`, published or not.
    async fn materialization_at(
        &self,
        key: &AssetKey,
        partition: Option<&str>,
        version: i64,
    ) -> StoreResult<Option<Materialization>>;
    /// Materializations newer than their step key's latest published one that are not published
    /// (held back by a failed check), oldest first.
    async fn held_back(&self) -> StoreResult<Vec<Materialization>>;
    /// [`CheckStore::held_back`] of one asset.
    async fn held_back_of(&self, key: &AssetKey) -> StoreResult<Vec<Materialization>> {
        let mut all = self.held_back().await?;
        all.retain(|m| &m.m.asset_key == key);
        Ok(all)
    }
    /// Publishes materialization `id` with `reason` (recorded); false when it was published already.
    async fn publish(&self, id: i64, reason: &str) -> StoreResult<bool>;
    /// Makes materialization `id` the live (newest published) one of its step key, in one
    /// transaction: publishes it if it is held back, and retracts every published materialization of
    /// the same step key newer than it; each change is recorded with `reason` and `actor`. Returns
    /// whether it was published now, and the ids retracted.
    async fn make_live(&self, id: i64, reason: &str, actor: &str) -> StoreResult<(bool, Vec<i64>)>;
    /// The publication records (publishes and retractions) of `key`'s materializations, oldest first.
    async fn publications(&self, key: &AssetKey) -> StoreResult<Vec<Publication>>;
}

/// A recorded publication: a held-back version published, or a published one retracted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// The materialization.
    pub materialization_id: i64,
    /// `publish` or `retract`.
    pub action: String,
    /// Why (as given).
    pub reason: String,
    /// Who (none: recorded before actors were).
    pub actor: Option<String>,
    /// When.
    pub created_at: String,
}

/// How one check went on one materialization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name.
    pub name: String,
    /// Its kind (`not_null`, …).
    pub kind: String,
    /// What a failure does.
    pub severity: CheckSeverity,
    /// No failing row and no error.
    pub passed: bool,
    /// Failing rows (for `row_count` and `freshness`: 1 when failing).
    pub failing_rows: i64,
    /// Up to five failing rows.
    pub samples: Vec<serde_json::Value>,
    /// How long it took.
    pub duration_ms: i64,
    /// Why it could not run (a missing column, a query that does not plan); counts as failing.
    pub error: Option<String>,
}

impl CheckOutcome {
    /// Whether this outcome keeps the materialization from being published.
    pub fn blocks(&self) -> bool {
        !self.passed && self.severity == CheckSeverity::Error
    }

    /// One line: `not_null_id failed: 3 failing rows`.
    pub fn summary(&self) -> String {
        match (&self.error, self.passed) {
            (Some(e), _) => format!("{} could not run: {e}", self.name),
            (None, true) => format!("{} passed", self.name),
            // A kind's own audit says why in words.
            (None, false) if self.kind == "audit" => format!(
                "{} failed: {}",
                self.name,
                self.samples
                    .first()
                    .and_then(|s| s["why"].as_str())
                    .unwrap_or("see its recorded details")
            ),
            (None, false) => format!("{} failed: {} failing row(s)", self.name, self.failing_rows),
        }
    }

    /// The summaries of the outcomes that block publishing, joined with `; `.
    pub fn blocking(outcomes: &[CheckOutcome]) -> String {
        outcomes
            .iter()
            .filter(|c| c.blocks())
            .map(|c| c.summary())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
