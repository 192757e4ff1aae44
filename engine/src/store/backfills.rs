//! What the run store keeps of backfills: the request, and which runs carry out each chunk.
//!
//! A backfill is recorded whole when it is created: the backfill row, and one queued run per chunk with
//! its planned steps, in one transaction. Its progress is never stored twice: it is read from the steps
//! of its runs ([`BackfillReads::backfill_steps`]). A resume adds a run per unfinished chunk covering
//! only what that chunk has not yet committed.

use super::{RunRecord, StepRecord, StepStatus, StoreResult};
use crate::key::{BackfillId, RunId, StepKey};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A backfill as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRecord {
    /// Id.
    pub backfill_id: BackfillId,
    /// The selection it covers (`None`: every asset).
    pub selection: Option<String>,
    /// The partitions asked for, as given: `FROM..TO`, a key list, or `all`.
    pub partitions: String,
    /// `missing` or `failed` when only those partitions were taken.
    pub filter: Option<String>,
    /// Partitions per run.
    pub per_run: i64,
    /// Steps at once within a run (`None`: the project's setting).
    pub concurrency: Option<i64>,
    /// Step keys it covers.
    pub steps: i64,
    /// When it was created.
    pub created_at: String,
    /// When a cancel was asked for (cleared by a resume).
    pub cancelled_at: Option<String>,
}

/// A run planned for one chunk of a backfill, with its steps.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// The run (queued).
    pub run: RunRecord,
    /// Its planned steps (pending).
    pub steps: Vec<StepRecord>,
}

/// One step of one of a backfill's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackfillStep {
    /// The chunk.
    pub chunk: i64,
    /// Which of the chunk's runs (0 = planned at creation).
    pub attempt: i64,
    /// The run.
    pub run_id: RunId,
    /// The step key.
    pub step: StepKey,
    /// Its state in that run.
    pub status: StepStatus,
    /// Its error, when it failed.
    pub error: Option<String>,
}

/// What the CLI and the UI read of backfills: their steps, and the latest outcome of each step key.
/// Nothing here changes state.
#[async_trait]
pub trait BackfillReads: Send + Sync {
    /// Every step of every run of a backfill, by chunk, attempt and plan position.
    async fn backfill_steps(&self, backfill_id: &BackfillId) -> StoreResult<Vec<BackfillStep>>;
    /// The status of each step key's most recent ended step in any run (of `asset`'s step keys only,
    /// when given): `assets backfill --failed`, and the `failed` partitions of `assets status`.
    async fn latest_step_outcomes(
        &self,
        asset: Option<&crate::key::AssetKey>,
    ) -> StoreResult<HashMap<StepKey, LatestOutcome>>;
}

/// The backfill half of the run store (the SQLite store implements both halves).
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Records a backfill with one queued run per chunk (chunk `i` is `runs[i]`), in one transaction.
    async fn create_backfill(
        &self,
        backfill: &BackfillRecord,
        runs: &[PlannedRun],
    ) -> StoreResult<()>;
    /// Adds a run to a chunk of a backfill (the next attempt), with its steps, in one transaction.
    async fn add_backfill_run(
        &self,
        backfill_id: &BackfillId,
        chunk: i64,
        run: &PlannedRun,
    ) -> StoreResult<()>;
    /// Most recent backfills first.
    async fn list_backfills(&self, limit: i64) -> StoreResult<Vec<BackfillRecord>>;
    /// A backfill by id or unique id prefix ([`StoreError::UnknownBackfill`](crate::error::StoreError)
    /// when none or several match).
    async fn get_backfill(&self, id_or_prefix: &str) -> StoreResult<BackfillRecord>;
    /// The runs of a backfill (chunk, attempt, run), by chunk and attempt.
    async fn backfill_runs(
        &self,
        backfill_id: &BackfillId,
    ) -> StoreResult<Vec<(i64, i64, RunRecord)>>;
    /// Asks a backfill to stop: records the cancel and cancels its queued runs, in one transaction.
    /// Returns the runs it cancelled.
    async fn cancel_backfill(&self, backfill_id: &BackfillId) -> StoreResult<Vec<RunId>>;
    /// Clears a backfill's cancel (a resume).
    async fn uncancel_backfill(&self, backfill_id: &BackfillId) -> StoreResult<()>;
}

/// How a step key's most recent ended step ended, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatestOutcome {
    /// Its end state.
    pub status: StepStatus,
    /// When it ended (the store's RFC 3339 stamp).
    pub finished_at: String,
}
