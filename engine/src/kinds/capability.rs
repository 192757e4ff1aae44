//! Capabilities: what a kind does beyond computing a table, which the engine asks the kind about
//! ([`AssetKind::reads_in_place`](super::AssetKind::reads_in_place)) instead of matching a kind's
//! configuration type. Reading in place is the first: a kind whose assets are observed, not
//! computed — each observation records what the outside data is now (files, a Delta version, a
//! query's rows) and every reader reads exactly that, with no copy.

use async_trait::async_trait;
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use std::any::Any;
use std::sync::Arc;

/// What a look at the outside data found.
pub struct Look {
    /// Its data version: unchanged when the data is (the observation is then not recorded again).
    pub data_version: String,
    /// What an observation records in its materialization's metadata, from which
    /// [`ReadsInPlace::recorded`] reads exactly this data again.
    pub metadata: serde_json::Value,
    /// The kind's own view of what it saw, for [`ReadsInPlace::table`].
    pub seen: Box<dyn Any + Send + Sync>,
}

/// An asset read in place: observed, never copied into a Delta table of its own.
#[async_trait]
pub trait ReadsInPlace: Send + Sync {
    /// Looks at the outside data now. The error is a sentence for the step (a permanent failure).
    async fn look(&self) -> Result<Look, String>;
    /// A table over what `look` saw.
    async fn table(
        &self,
        ctx: &SessionContext,
        look: &Look,
    ) -> Result<Arc<dyn TableProvider>, String>;
    /// A table over exactly what an observation recorded (its `metadata` and `data_version`); data
    /// that changed since fails the read, naming what changed.
    async fn recorded(
        &self,
        ctx: &SessionContext,
        metadata: &serde_json::Value,
        data_version: &str,
    ) -> Result<Arc<dyn TableProvider>, String>;
    /// Something an observation recorded (its `metadata`) that is gone now, making the asset stale
    /// until it is observed again. The default: nothing can go.
    fn vanished(&self, _metadata: &serde_json::Value) -> Option<String> {
        None
    }
}

/// One result of a kind's own audit of a new materialization ([`Audits`]).
#[derive(Debug, Clone)]
pub struct AuditResult {
    /// The check's name (recorded like a declared check's).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// `Error`: a failure keeps the version unpublished; `Warn`: recorded only.
    pub severity: spine_schemas::events::CheckSeverity,
    /// What it found, for the user (recorded with the check).
    pub message: String,
    /// Its figures (a verdict, an interval, sample sizes), recorded with the check.
    pub details: serde_json::Value,
}

/// A kind that audits its own assets' new materializations (an eval's gate), after the commit and
/// the declared checks, before publishing: a failed `error` result holds the version back like a
/// failed check (downstream keeps reading the last published one; `assets publish --reason`
/// overrides).
#[async_trait]
pub trait Audits: Send + Sync {
    /// The results for the new version, registered as `this` in `ctx`, with the asset's currently
    /// published version (of the same partition) registered as `baseline` when `has_baseline`.
    async fn audit(&self, ctx: &SessionContext, has_baseline: bool) -> Vec<AuditResult>;
}

/// A kind whose parked steps wait on work outside Spine (a Temporal workflow): each daemon pass asks
/// it whether that work has ended, and signals the step when it has, so the next execution records
/// the result. No slot is held while it waits; the kind keeps what identifies the outside work (a
/// workflow id) in the checkpoints, under [`parked_key`].
#[async_trait]
pub trait AwaitsExternal: Send + Sync {
    /// Whether the work that `step` of run `run` parked on has ended. The error is a sentence: the
    /// daemon logs it and the step stays parked.
    async fn ended(
        &self,
        run: &crate::key::RunId,
        step: &crate::key::StepKey,
        checkpoints: &dyn super::checkpoints::Checkpoints,
    ) -> Result<bool, String>;
}

/// Where a kind keeps the handle of the outside work a step of `run` parked on (one per run and
/// step; position 0 holds it).
pub fn parked_key(
    run: &crate::key::RunId,
    step: &crate::key::StepKey,
) -> super::checkpoints::CheckpointKey {
    super::checkpoints::CheckpointKey {
        step: step.clone(),
        case_id: format!("parked in run {run}"),
        code_version: String::new(),
        inputs: String::new(),
    }
}
