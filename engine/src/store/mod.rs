//! The run store: runs, steps, the append-only event log, materializations and lineage.
//!
//! [`RunStore`] is the seam; [`sqlite::SqliteStore`] is the embedded default, [`postgres::PgStore`]
//! the shared one (both compiled from the same code in `store/sql/`). Every method that changes
//! state does so in one transaction, and the executor calls it *before* acting on the change (see the
//! durability protocol in docs/architecture.md), so a Postgres store and many workers fit behind the same
//! trait.

/// The store's code in `store/sql/`, compiled into the backend module that invokes this (`sqlite`,
/// `postgres`) with that module's `Db`, `DbRow`, `DbConnection`, `Store`, `FOR_UPDATE`,
/// `EVENT_ORDER_LOCK` and `RECLAIM` (ADR 0025). Paths are relative to the invoking file
/// (`store/BACKEND/mod.rs`).
macro_rules! shared_store_code {
    ($($m:ident),* $(,)?) => {
        $(mod $m {
            include!(concat!("../sql/", stringify!($m), ".rs"));
        })*
    };
}

pub mod audit;
pub mod backfills;
pub mod checkpoints;
pub mod checks;
pub mod control;
pub mod daemon;
pub mod lineage;
mod migrations;
pub mod partitions;
pub mod postgres;
mod read;
pub mod retention;
pub mod sqlite;
pub mod tables;
pub mod workers;

pub use crate::events::{EventRecord, NewEvent};
pub use audit::{AuditRecord, AuditStore, NewAudit};
pub use backfills::{
    BackfillReads, BackfillRecord, BackfillStep, BackfillStore, LatestOutcome, PlannedRun,
};
pub use checkpoints::{Checkpoint, CheckpointKey, CheckpointStore, RunSpend};
pub use checks::{CheckOutcome, CheckReads, CheckRecord, CheckStore, Publication};
pub use control::{CancelOutcome, ControlReads, ControlStore};
pub use daemon::{DaemonLock, DaemonReads, DaemonStore, TickRecord};
pub use lineage::{LineageReads, LineageStore};
pub use partitions::PartitionStore;
pub use read::{ReadStore, RunReads};
pub use retention::{PruneReport, RetentionStore};
pub use tables::TableStore;
pub use workers::{ClaimLimits, Claimed, WorkerStore, QUEUE_OWNER, WORKERS_OWNER};
mod records;
pub use records::{
    Materialization, NewMaterialization, RunLease, RunRecord, StartedAttempt, StepOutcome,
    StepRecord, UpstreamRead,
};

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::key::{AssetKey, PartitionKey, RunId, StepKey};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var),* }
        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),* } }
            /// Parses a stored name.
            pub fn parse(s: &str) -> StoreResult<Self> {
                match s { $($s => Ok($name::$var),)* other => Err(StoreError::Corrupt(format!("unknown {} '{other}'", stringify!($name)))) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// State of a run.
    RunStatus {
        /// Created, not started.
        Queued => "queued",
        /// Executing.
        Running => "running",
        /// Every step succeeded or was up to date.
        Succeeded => "succeeded",
        /// At least one step failed.
        Failed => "failed",
        /// Stopped on request.
        Cancelled => "cancelled",
        /// Parked: a step waits for an external signal; no process holds the run. `execute` resumes it
        /// once the step is signalled.
        Waiting => "waiting",
    }
);

string_enum!(
    /// State of a step.
    StepStatus {
        /// Waiting for upstream steps.
        Pending => "pending",
        /// An attempt is running.
        Running => "running",
        /// Materialized.
        Succeeded => "succeeded",
        /// Fresh; not recomputed.
        UpToDate => "up_to_date",
        /// Failed after its last attempt.
        Failed => "failed",
        /// Not run because an upstream step failed.
        Skipped => "skipped",
        /// Stopped on request.
        Cancelled => "cancelled",
        /// Parked until an external signal (an approval, a workflow); its downstream steps wait.
        Waiting => "waiting",
    }
);

impl RunStatus {
    /// True while a process is meant to hold the run (`queued`, `running`).
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// True for the end states.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl StepStatus {
    /// True for the end states.
    pub fn is_terminal(self) -> bool {
        !matches!(self, StepStatus::Pending | StepStatus::Running)
    }
}

/// Durable state of runs and assets.
#[async_trait]
pub trait RunStore:
    ReadStore
    + AuditStore
    + BackfillStore
    + CheckpointStore
    + CheckStore
    + ControlStore
    + DaemonStore
    + LineageStore
    + PartitionStore
    + RetentionStore
    + TableStore
    + WorkerStore
    + Send
    + Sync
{
    /// The same store stamping its records with `clock`'s time.
    fn with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn RunStore>;
    /// Records a new run with its planned steps (all pending) and a `run_queued` event.
    async fn create_run(&self, run: &RunRecord, steps: &[StepRecord]) -> StoreResult<()>;
    /// Signals a parked step: `waiting` → `pending`, with `event` (which carries the signal's payload).
    /// False when the step is not waiting.
    async fn signal_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// Takes a queued (or parked, `waiting`) run for execution by process `pid` on `host`: atomically
    /// → `running`,
    /// recording the owner, with `event`. False when the run is not queued (another executor took it,
    /// or it has ended).
    async fn start_run(
        &self,
        run_id: &RunId,
        lease: &RunLease,
        event: NewEvent,
    ) -> StoreResult<bool>;
    /// Takes over an interrupted run for settling by `lease`'s process: atomically, and only while the
    /// run is still as `run` shows it (status, process, host, lease). False when another process took
    /// it first or it changed meanwhile: exactly one of several processes settling a dead run wins.
    async fn take_over_run(&self, run: &RunRecord, lease: &RunLease) -> StoreResult<bool>;
    /// Changes a run's status (and start/finish time), with an event.
    async fn set_run_status(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Records that a step attempt starts and allocates its materialization sequence number: above
    /// every number the store allocated for the asset (partition) and at least the store clock's time
    /// in milliseconds, so a lost or restored store never repeats a number a table holds.
    async fn start_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        attempt: i64,
        event: NewEvent,
    ) -> StoreResult<StartedAttempt>;
    /// [`start_step`](RunStore::start_step) under a claim, in one transaction: the claim on
    /// `claim.step` is taken as by [`claim_step`](RunStore::claim_step) and the step starts only if it was
    /// granted; otherwise nothing changes and the holder is returned.
    async fn start_claimed_step(
        &self,
        claim: &StepClaim,
        attempt: i64,
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Result<StartedAttempt, StepClaim>>;
    /// Records a failed attempt that will be retried.
    async fn attempt_failed(
        &self,
        run_id: &RunId,
        step: &StepKey,
        error: &str,
        event: NewEvent,
    ) -> StoreResult<()>;
    /// Ends a step; records its materialization (returning its id) and events in the same transaction.
    async fn finish_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<Option<i64>>;
    /// Appends events.
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    /// Claims `claim.step` for `claim.owner` until `claim.lease_until_ms`, atomically: granted when
    /// nobody holds it, when the holder's lease has expired at `now_ms`, when `claim.owner` already holds
    /// it (a renewal), or when the holder is `takeover_from` (an owner known to be dead). Otherwise the
    /// current holder is returned.
    async fn claim_step(
        &self,
        claim: &StepClaim,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<ClaimOutcome>;
    /// Extends `owner`'s claim on `step`; false when the claim was lost (expired and taken over).
    async fn renew_claim(
        &self,
        step: &StepKey,
        owner: &str,
        lease_until_ms: i64,
    ) -> StoreResult<bool>;
    /// Releases `owner`'s claim on `step` (nothing happens if another owner holds it now).
    /// Extends the lease of the run `owner` executes and every step claim `owner` holds to
    /// `lease_until_ms`; returns the step keys it still held.
    async fn renew_claims(&self, owner: &str, lease_until_ms: i64) -> StoreResult<Vec<StepKey>>;
    async fn release_claim(&self, step: &StepKey, owner: &str) -> StoreResult<()>;
    /// Releases every claim of a run (when an interrupted run is settled).
    async fn release_run_claims(&self, run_id: &RunId) -> StoreResult<()>;
}

/// A run store as the event log a step's kind writes to ([`crate::kinds::EventLog`]).
pub struct StoreEvents(pub Arc<dyn RunStore>);

#[async_trait]
impl crate::kinds::EventLog for StoreEvents {
    async fn append_step_events(&self, events: &[NewEvent]) -> Result<(), String> {
        self.0
            .append_events(events)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The run store's checkpoints as kinds see them ([`crate::kinds::checkpoints::Checkpoints`]).
pub struct StoreCheckpoints(pub Arc<dyn RunStore>);

#[async_trait]
impl crate::kinds::checkpoints::Checkpoints for StoreCheckpoints {
    async fn put(
        &self,
        key: &CheckpointKey,
        position: i64,
        node: &str,
        delta: &serde_json::Value,
    ) -> Result<bool, String> {
        self.0
            .put_checkpoint(key, position, node, delta)
            .await
            .map_err(|e| e.to_string())
    }

    async fn load(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, String> {
        self.0.checkpoints(key).await.map_err(|e| e.to_string())
    }

    async fn spend(
        &self,
        run: &RunId,
        step: &StepKey,
        tokens: i64,
        cost: f64,
    ) -> Result<crate::kinds::checkpoints::RunSpend, String> {
        self.0
            .add_run_spend(run, step, tokens, cost)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Opens the store at `url` (`sqlite://PATH`, or `postgres://…` / `postgresql://…`), creating and
/// migrating it as needed.
pub async fn open_store(url: &str) -> StoreResult<Arc<dyn RunStore>> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(sqlite::SqliteStore::open(url).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgStore::open(url).await?));
    }
    Err(StoreError::UnsupportedUrl(url.to_string()))
}

/// Opens the store at `url` as [`open_store`] does, for reading only: what a CLI command that only
/// reads (`assets runs`, `logs`) gets, without loading the project.
pub async fn open_reader(url: &str) -> StoreResult<Arc<dyn ReadStore>> {
    Ok(open_store(url).await?)
}

/// A lease on a step key: while it holds, only its owner materializes that asset (partition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepClaim {
    /// The asset (partition).
    pub step: StepKey,
    /// The run the owner executes.
    pub run_id: RunId,
    /// The executor holding it: `host:pid:run`, unique per executing process and run.
    pub owner: String,
    /// Until when, in milliseconds since the Unix epoch; the owner renews it while it works.
    pub lease_until_ms: i64,
}

/// What [`RunStore::claim_step`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the claim now.
    Claimed,
    /// Someone else does.
    Held(StepClaim),
}

/// Run ids are UUID v7 in hex: the first 12 characters are the creation time in milliseconds, so a prefix
/// of this length tells apart runs created in different milliseconds (8 characters, 65 seconds, did not).
pub const SHORT_ID_LEN: usize = 12;

/// The shortest prefix of `id`, at least [`SHORT_ID_LEN`] long, that no id in `others` shares.
pub fn unique_prefix<'a>(id: &'a str, others: &[String]) -> &'a str {
    let common = others
        .iter()
        .filter(|o| o.as_str() != id)
        .map(|o| {
            o.bytes()
                .zip(id.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0);
    let len = (common + 1).max(SHORT_ID_LEN).min(id.len());
    &id[..len]
}

/// This machine's host name (for run ownership).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Current time as RFC 3339 with milliseconds, UTC.
pub fn now() -> String {
    SystemClock.stamp()
}
