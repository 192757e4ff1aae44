//! The arguments and sub-commands of the commands that have them (`backfill`, `partitions`,
//! `schedules`, `automation`).

use super::SelectArgs;
use clap::Subcommand;

/// `assets backfill SELECTION …`: what to backfill and how.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// First partition (inclusive); with --to.
    #[arg(long, requires = "to", conflicts_with = "partitions")]
    pub from: Option<String>,
    /// Last partition (inclusive); with --from.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// These partitions (comma-separated or repeated) instead of a range.
    #[arg(long, value_name = "KEY,KEY")]
    pub partitions: Vec<String>,
    /// Only partitions never materialized.
    #[arg(long, conflicts_with = "failed")]
    pub missing: bool,
    /// Only partitions whose latest step failed (or was skipped because its upstream failed).
    #[arg(long)]
    pub failed: bool,
    /// Partitions per run (default: all in one run).
    #[arg(long, value_name = "N")]
    pub per_run: Option<usize>,
    /// Steps to run at once within a run (default: the project's `concurrency`).
    #[arg(long, short = 'c')]
    pub concurrency: Option<usize>,
    /// Only record the backfill and print its id; `assets backfill resume ID` runs it.
    #[arg(long)]
    pub queue: bool,
    /// Stop at the first failed step: the backfill ends cancelled (resume continues it).
    #[arg(long, conflicts_with = "queue")]
    pub fail_fast: bool,
    /// A tag on each of its runs (may repeat): --tag ticket=OPS-12.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
}

/// `assets partitions …`.
#[derive(Subcommand, Debug)]
pub enum PartitionsAction {
    /// Add keys to a dynamic partition set (`partitions: {dynamic: NAME}`); keys it has are kept.
    Add {
        /// The set's name.
        name: String,
        /// Keys to add.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// `assets rollout …`.
#[derive(Subcommand, Debug)]
pub enum RolloutAction {
    /// The live (published) version of each gated asset, with when and why, and the versions
    /// waiting behind it.
    Status,
    /// Every version of a gated asset: subject version, gate verdicts, published or not, and the
    /// publications and retractions with who and why.
    History {
        /// The gated asset.
        subject: String,
    },
    /// Makes a version live: publishes it if its gate held it back (and retracts newer published
    /// ones); recorded with who and why.
    Promote {
        /// The gated asset.
        subject: String,
        /// Its Delta version to make live.
        #[arg(long)]
        version: i64,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Makes an earlier version live again (default: the one live before the current one) by
    /// retracting the newer published versions; recorded with who and why.
    Rollback {
        /// The gated asset.
        subject: String,
        /// The Delta version to go back to.
        #[arg(long)]
        to: Option<i64>,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
}

/// `assets features …`.
#[derive(Subcommand, Debug)]
pub enum FeaturesAction {
    /// The newest values of entities from the online store, all from one snapshot: VIEW is an
    /// `online_snapshot` asset or the feature view it serves; an entity with several key columns is
    /// written `a,b`.
    Get {
        /// The online snapshot, or the feature view it serves.
        view: String,
        /// Entities (their key values).
        #[arg(required = true)]
        entities: Vec<String>,
    },
}

/// `assets schedules …`.
#[derive(Subcommand, Debug)]
pub enum ScheduleAction {
    /// The schedule's next ticks, in its own timezone and in UTC, each with the steps it would run.
    Preview {
        /// The schedule.
        name: String,
        /// How many ticks.
        #[arg(long, short = 'n', default_value_t = 5)]
        count: usize,
    },
    /// A tick now, as if it were due: a run of what the schedule selects (recorded as a `fired`
    /// tick; the schedule's own ticks still come when due), executed here unless --queue.
    Fire {
        /// The schedule.
        name: String,
        /// Only record the run; the daemon (or `assets execute`) runs it.
        #[arg(long)]
        queue: bool,
    },
}

/// `assets automation …`.
#[derive(Subcommand, Debug)]
pub enum AutomationAction {
    /// Say why an asset (one partition of it) would or would not be materialized by the daemon now:
    /// its condition tree, each part with its verdict and reason.
    Explain {
        /// The asset.
        key: String,
        /// The partition (default: its latest).
        #[arg(long)]
        partition: Option<String>,
    },
}

/// Managing one backfill.
#[derive(Subcommand, Debug)]
pub enum BackfillAction {
    /// Show a backfill's state, progress per chunk and failures.
    Status {
        /// Backfill id or a unique prefix.
        id: String,
    },
    /// Stop a backfill: its queued runs are cancelled, a running one stops before its next commit.
    Cancel {
        /// Backfill id or a unique prefix.
        id: String,
    },
    /// Continue a backfill after a crash, a failure or a cancel: exactly the partitions not yet
    /// committed run again.
    Resume {
        /// Backfill id or a unique prefix.
        id: String,
        /// Steps to run at once within a run (default: the backfill's, else the project's).
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
        /// Stop at the first failed step: the backfill ends cancelled (resume continues it).
        #[arg(long)]
        fail_fast: bool,
    },
}

/// `assets temporal …`: reach the workflow of a `temporal` asset.
#[derive(Subcommand, Debug)]
pub enum TemporalAction {
    /// Send a Temporal signal to the asset's workflow (the one a parked step waits on, else the one
    /// its latest materialization recorded). Not `assets signal`, which resumes a step Spine parked.
    Signal {
        /// The `temporal` asset.
        key: String,
        /// The signal's name.
        name: String,
        /// Its argument, as JSON (none: no argument).
        #[arg(long)]
        payload: Option<String>,
    },
    /// Ask the asset's workflow a Temporal query; prints its answer as JSON.
    Query {
        /// The `temporal` asset.
        key: String,
        /// The query's name.
        name: String,
        /// Its argument, as JSON (none: no argument).
        #[arg(long)]
        payload: Option<String>,
    },
}

/// `assets audit …`.
#[derive(Subcommand, Debug, Clone)]
pub enum AuditAction {
    /// Check the hash chain: exit 0 when intact, 1 naming the first changed (or removed) entry.
    Verify,
}

/// `assets events …`.
#[derive(Subcommand, Debug, Clone)]
pub enum EventsAction {
    /// Print events in order (every run's), from after `--after`.
    Tail {
        /// Start after this event id (0: from the first).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many (without --follow).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// Keep printing new events as they are written (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
    },
    /// Check the signatures of events (JSON lines from `events tail --json`) read on stdin; exit 1
    /// naming the first bad one.
    Verify,
}
