//! Retention: `assets gc --older-than 30d` prunes the records of old runs — their events, their steps,
//! the runs, materializations nothing depends on any more, old schedule ticks — and keeps everything
//! staleness, lineage, `reproduce`, failed-partition state and schedule cursors read:
//! - the latest published materialization of each step key, every one newer than it (held back), and
//!   every materialization a kept one read (its `upstream`);
//! - the latest ended step of each step key (`assets backfill --failed`, `status`), and its run;
//! - the latest tick of each schedule or sensor (and its latest that was not fired by hand);
//! - runs of backfills, and every sequence number ever allocated (`asset_sequences`).
//!
//! Agent checkpoints stored before the cutoff go too: they only resume recent work.

use super::StoreResult;
use async_trait::async_trait;
use serde::Serialize;

/// What a prune removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Event rows.
    pub events: u64,
    /// Step rows.
    pub steps: u64,
    /// Run records.
    pub runs: u64,
    /// Materialization records (with their lineage, check results and publications).
    pub materializations: u64,
    /// Schedule and sensor ticks.
    pub ticks: u64,
    /// Agent checkpoints stored before the cutoff.
    pub checkpoints: u64,
}

/// The retention half of the run store.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Prunes what ended before `before` (an RFC 3339 stamp as the store writes them) and nothing
    /// depends on, in one transaction (rolled back when `dry_run`), then reclaims the space (not in a
    /// dry run).
    async fn prune(&self, before: &str, dry_run: bool) -> StoreResult<PruneReport>;
}
