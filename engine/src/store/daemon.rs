//! What the run store keeps for the daemon: schedule ticks (keyed by schedule and scheduled time, so a
//! tick is launched once) and the one-daemon-per-project lock.

use super::{PlannedRun, StoreResult};
use crate::key::RunId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A recorded tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRecord {
    /// The schedule.
    pub schedule: String,
    /// The scheduled time (RFC 3339, UTC).
    pub tick_at: String,
    /// `started` (the daemon began evaluating the schedule then) or `launched`.
    pub status: String,
    /// The run it launched.
    pub run_id: Option<RunId>,
    /// Why (missed ticks skipped, the partition chosen).
    pub reason: Option<String>,
    /// When it was recorded.
    pub created_at: String,
}

/// Who holds the daemon lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonLock {
    /// `host:pid:start`.
    pub owner: String,
    /// Its process.
    pub pid: i64,
    /// Its host.
    pub host: String,
    /// Lease deadline, milliseconds since the Unix epoch.
    pub lease_until_ms: i64,
}

/// What the CLI and the UI read of the daemon's records: schedule and sensor ticks. Nothing here
/// changes state.
#[async_trait]
pub trait DaemonReads: Send + Sync {
    /// The latest recorded tick time of `schedule`.
    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<String>>;
    /// Recent ticks, newest first (of one schedule, or all).
    async fn ticks(&self, schedule: Option<&str>, limit: i64) -> StoreResult<Vec<TickRecord>>;
}

/// The daemon's half of the run store.
#[async_trait]
pub trait DaemonStore: Send + Sync {
    /// Records `tick` and, with it, its queued `run`, in one transaction; false (and nothing written)
    /// when the tick was recorded before.
    async fn record_tick(&self, tick: &TickRecord, run: Option<&PlannedRun>) -> StoreResult<bool>;
    /// Takes or renews the lock for `lock.owner`: granted when free, expired at `now_ms`, already
    /// ours, or held by `takeover_from` (an owner known to be dead). Otherwise returns the holder.
    async fn take_daemon_lock(
        &self,
        lock: &DaemonLock,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Result<(), DaemonLock>>;
    /// Releases the lock if `owner` holds it.
    async fn release_daemon_lock(&self, owner: &str) -> StoreResult<()>;
    /// The current holder, if any.
    async fn daemon_lock(&self) -> StoreResult<Option<DaemonLock>>;
}
