//! The read parts of the run store: what the CLI and the UI read (runs, steps, events,
//! materializations, ticks, check results, progress). Each half of the store that they read has its
//! read part (`RunReads` here, `BackfillReads`, `CheckReads`, `ControlReads`, `DaemonReads`,
//! `LineageReads` beside their halves); [`ReadStore`] is all of them, and is what
//! [`Instance::reader`](crate::instance::Instance::reader) hands the CLI and the UI (ADR 0027).
//! Nothing here changes state: a command that changes something goes through the engine, which
//! writes through the store's protocol halves.

use super::{
    BackfillReads, CheckReads, ControlReads, DaemonReads, EventRecord, LineageReads,
    Materialization, RunRecord, StepRecord, StoreResult,
};
use crate::key::{AssetKey, RunId, StepKey};
use async_trait::async_trait;
use std::collections::HashMap;

/// What the CLI and the UI read of runs, steps, events and materializations.
#[async_trait]
pub trait RunReads: Send + Sync {
    /// Most recent runs first.
    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>>;
    /// Every run in `waiting` (parked steps: approvals, workflows), oldest first.
    async fn waiting_runs(&self) -> StoreResult<Vec<RunRecord>>;
    /// A run by id or unique id prefix;
    /// [`StoreError::UnknownRun`](crate::error::StoreError::UnknownRun) lists the candidates when
    /// none or several match.
    async fn get_run(&self, id_or_prefix: &str) -> StoreResult<RunRecord>;
    /// The shortest prefix of `run_id` that names it alone (at least
    /// [`SHORT_ID_LEN`](super::SHORT_ID_LEN) characters): what the CLI prints, so it can be pasted
    /// back.
    async fn short_run_id(&self, run_id: &RunId) -> StoreResult<String>;
    /// Steps of a run in plan order.
    async fn steps(&self, run_id: &RunId) -> StoreResult<Vec<StepRecord>>;
    /// Events of a run after `after_id`.
    async fn events(&self, run_id: &RunId, after_id: i64) -> StoreResult<Vec<EventRecord>> {
        self.events_page(run_id, after_id, i64::MAX).await
    }
    /// At most `limit` events of a run after `after_id`, in order (to read a long log in pages).
    async fn events_page(
        &self,
        run_id: &RunId,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>>;
    /// At most `limit` events of every run after `after_id`, in id order (`assets events tail`). On
    /// Postgres, ids are allocated in commit order per run, not across runs: a reader that tails
    /// every run by id may pass over an event of another run committed a moment later.
    async fn events_since(&self, after_id: i64, limit: i64) -> StoreResult<Vec<EventRecord>>;
    /// Latest materialization of each asset (unpartitioned).
    async fn latest_materializations(&self) -> StoreResult<HashMap<StepKey, Materialization>>;
    /// The latest materialization of one step key (an asset, or one partition of it).
    async fn latest_materialization(&self, step: &StepKey) -> StoreResult<Option<Materialization>>;
    /// Materializations of one asset, newest first.
    async fn materializations(
        &self,
        key: &AssetKey,
        limit: i64,
    ) -> StoreResult<Vec<Materialization>>;
    /// Every row of a store table (`runs`, `steps`, `events`, `materializations`, `lineage`,
    /// `backfills`, `backfill_runs`, `schedule_ticks`) as JSON
    /// objects, for `assets sql`.
    async fn dump_table(
        &self,
        table: &str,
    ) -> StoreResult<Vec<serde_json::Map<String, serde_json::Value>>>;
    /// Runs that are queued or running (candidates for interruption recovery).
    async fn active_runs(&self) -> StoreResult<Vec<RunRecord>>;
    /// Flushes and closes connections (SQLite checkpoints its WAL).
    async fn close(&self);
}

/// Every read part of the run store: what the CLI and the UI are given.
pub trait ReadStore:
    RunReads + BackfillReads + CheckReads + ControlReads + DaemonReads + LineageReads
{
}

impl<T> ReadStore for T where
    T: RunReads + BackfillReads + CheckReads + ControlReads + DaemonReads + LineageReads + ?Sized
{
}
