//! The command line's definitions (clap): commands, their flags and arguments. Every command and flag
//! here is named in docs/reference/cli.md (a test in main.rs checks it).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod sub;
pub use sub::*;

/// Spine: a data-pipeline-first asset orchestrator.
#[derive(Parser, Debug)]
#[command(name = "assets", version, about, long_about = None)]
pub struct Cli {
    /// Project folder (the one holding spine.toml).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "SPINE_PROJECT",
        default_value = "."
    )]
    pub project: PathBuf,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// A named set of overrides from spine.toml's `[targets.NAME]` (state, warehouse, vars).
    #[arg(long, global = true, env = "SPINE_TARGET")]
    pub target: Option<String>,
    /// Values for `${var:NAME}`, as a YAML or JSON mapping: --vars '{orders: 1000}'.
    #[arg(long, global = true, value_name = "MAPPING")]
    pub vars: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with run and step ids.
    Json,
}

/// Lineage output formats.
#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum LineageFormat {
    /// An indented tree.
    Tree,
    /// Graphviz dot.
    Dot,
    /// JSON nodes and edges.
    Json,
    /// A Mermaid flowchart (renders in GitHub and most Markdown viewers).
    Mermaid,
}

/// Which assets a command works on. Several selections are a union; `--exclude` removes what it
/// selects (dbt's `--select` / `--exclude`, Dagster's `--select`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Selections, e.g. '+marts/revenue' 'group:staging' 'raw/*' (default: everything).
    #[arg(value_name = "SELECTION")]
    pub selection: Vec<String>,
    /// A selection, as a flag (may repeat; same as a positional selection).
    #[arg(long = "select", short = 's', value_name = "SELECTION")]
    pub select: Vec<String>,
    /// Leave out what this selects (may repeat).
    #[arg(long, value_name = "SELECTION")]
    pub exclude: Vec<String>,
    /// Another checkout's `assets list --json`, for `state:modified` / `state:new`.
    #[arg(long, value_name = "MANIFEST")]
    pub state: Option<PathBuf>,
}

impl SelectArgs {
    /// The one selection expression these arguments mean (`None`: everything).
    pub fn expression(&self) -> Option<String> {
        let include: Vec<String> = self.selection.iter().chain(&self.select).cloned().collect();
        spine_engine::selection::combine(&include, &self.exclude)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a small working project.
    Init {
        /// Folder to create (default: the current one).
        dir: Option<PathBuf>,
    },
    /// Validate the project (files, keys, graph, SQL planning) without running anything.
    Check,
    /// List assets.
    List {
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Materialize the selected assets (fresh ones are skipped unless --force).
    Materialize {
        #[command(flatten)]
        select: SelectArgs,
        /// Recompute fresh assets too.
        #[arg(long)]
        force: bool,
        /// Incremental assets rebuild their tables instead of appending (implies --force).
        #[arg(long)]
        full_refresh: bool,
        /// Steps to run at once (default: the project's `concurrency`).
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
        /// Print the plan (each step, whether it would run, and why) and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Skip steps another live run is materializing (default: wait for them).
        #[arg(long)]
        no_wait: bool,
        /// Only record the run as queued and print its id; `assets execute` runs it.
        #[arg(long, conflicts_with = "dry_run")]
        queue: bool,
        /// Stop at the first failed step: steps not started are cancelled, running ones stop
        /// before their commits.
        #[arg(long, conflicts_with = "queue")]
        fail_fast: bool,
        /// A tag on the run (may repeat): --tag team=growth.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Partitions of the selected partitioned assets: keys (repeat or comma-separate) or one
        /// FROM..TO range (default: every partition that exists).
        #[arg(long = "partition", value_name = "KEY|FROM..TO")]
        partitions: Vec<String>,
    },
    /// Observe the selected source assets (`kind: source`; default: all of them): record their files'
    /// sizes and modification times as a new data version when they changed, so exactly their
    /// dependents become stale. `materialize` observes the sources it runs too.
    Observe {
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Backfill partitions: record a durable backfill of the selected partitioned assets over a range
    /// of partitions, chunked into runs, and run it (`status`, `cancel`, `resume` manage one).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Backfill {
        #[command(subcommand)]
        action: Option<BackfillAction>,
        #[command(flatten)]
        args: BackfillArgs,
    },
    /// List backfills with their state and progress.
    Backfills {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Run the daemon: evaluate schedules and sensors (launching each due tick once), run queued backfills and
    /// queued runs; one per project. SIGTERM or Ctrl-C stops it after the current run (twice: cancels it).
    Daemon {
        /// Time between passes (e.g. 30s, 5m).
        #[arg(long, default_value = "30s")]
        interval: String,
        /// One pass, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Run a worker: take queued runs and execute their steps, sharing them with every other worker
    /// on the same run store (Postgres for workers on several machines). SIGTERM or Ctrl-C stops it
    /// after the steps under way; a killed worker's steps are taken over once its lease runs out.
    Worker {
        /// Steps at once (default: the project's `concurrency`).
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
        /// Only steps of assets tagged `pool=NAME` (without: assets with no pool).
        #[arg(long)]
        pool: Option<String>,
        /// Time between looks at the store while idle (e.g. 200ms, 1s).
        #[arg(long, default_value = "200ms")]
        poll: String,
        /// Exit once no queued or running run is left.
        #[arg(long)]
        exit_when_idle: bool,
        /// Execute the steps Temporal delivers (`[executor] kind = "temporal"`): the activities on
        /// the executor's task queue, from any number of workers on any machines.
        #[arg(long)]
        temporal: bool,
    },
    /// The audit log: every mutating command and UI action — who (`SPINE_ACTOR`, else the OS
    /// user), what, when, from where — append-only and hash-chained; `verify` checks the chain.
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        /// How many of the newest entries to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// The event log of every run: `tail` prints it (`--json`: one object per line, signed with
    /// `SPINE_EVENT_KEY` when set); `verify` checks such lines' signatures on stdin.
    Events {
        #[command(subcommand)]
        action: EventsAction,
    },
    /// Print a contract's JSON Schema (`project`: spine.toml, `asset`: an asset file, `event`,
    /// `command_message`), for editors and for consumers of events.
    Schema {
        /// Which one.
        name: String,
    },
    /// Automation conditions (`automation:` on assets), as the daemon decides them.
    Automation {
        #[command(subcommand)]
        action: AutomationAction,
    },
    /// List the project's schedules with their next and latest ticks; `preview` and `fire` one.
    Schedules {
        #[command(subcommand)]
        action: Option<ScheduleAction>,
    },
    /// List the project's sensors: the prefix each watches, how many objects are there and how many
    /// are new (modified after its cursor), and its latest tick.
    Sensors,
    /// List schedule and sensor ticks, newest first: when each was due, the run it launched, or why it was skipped.
    Ticks {
        /// Only this schedule's (or sensor's) ticks.
        #[arg(long)]
        schedule: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Execute a queued run in this process (default: the oldest queued run).
    Execute {
        /// Run id or a unique prefix.
        run: Option<String>,
        /// Steps to run at once (default: the project's `concurrency`).
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
        /// Skip steps another live run is materializing (default: wait for them).
        #[arg(long)]
        no_wait: bool,
    },
    /// Cancel a run: a queued or parked one at once; a running one stops every step that has not
    /// committed (its executor polls for the request).
    Cancel {
        /// Run id or a unique prefix.
        run: String,
    },
    /// Re-run an ended run from its failure (its failed, skipped and cancelled steps) as a new run.
    Rerun {
        /// Run id or a unique prefix.
        run: String,
        /// Every step of the run, not only those that did not succeed.
        #[arg(long)]
        all: bool,
        /// Only record the new run as queued and print its id; `assets execute` runs it.
        #[arg(long)]
        queue: bool,
        /// Steps to run at once (default: the project's `concurrency`).
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
    },
    /// Signal a parked (waiting) step of a run: an approval, a workflow's result. `assets execute RUN`
    /// then runs the step again with the payload.
    Signal {
        /// Run id or a unique prefix.
        run: String,
        /// The parked step (its key).
        step: String,
        /// JSON payload handed to the step (default: `{}`).
        #[arg(long)]
        payload: Option<String>,
    },
    /// List the parked steps that wait for a human decision (an agent node's `approval`), and why.
    Approvals,
    /// Approve a step that waits for a decision; the daemon (or `assets execute RUN`) resumes it.
    Approve {
        /// Run id or a unique prefix.
        run: String,
        /// The waiting step (its key).
        step: String,
        /// Why (recorded with who decided and when).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a step that waits for a decision: its waiting cases end (or go to `on_reject`).
    Reject {
        /// Run id or a unique prefix.
        run: String,
        /// The waiting step (its key).
        step: String,
        /// Why (recorded with who decided and when).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Check each materialized asset's Delta table against the run store (log readable, data files
    /// present, no unknown versions).
    Doctor {
        #[command(flatten)]
        select: SelectArgs,
        /// Move unreadable tables to .spine/quarantine/ and re-materialize what is broken.
        #[arg(long)]
        repair: bool,
    },
    /// Prune the run store's records of runs that ended before a cutoff: their events and steps, the
    /// runs, materializations nothing reads any more and old ticks. Kept: each step key's latest
    /// published materialization, newer held-back ones and what they read, each step key's latest
    /// ended step, each schedule's latest tick, backfill runs, sequence numbers.
    Gc {
        /// Prune what ended longer ago than this (`30d`, `12h`).
        #[arg(long, value_parser = crate::cmd::gc::parse_age)]
        older_than: std::time::Duration,
        /// Count what would be pruned; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// An asset's Delta commits, newest first: version, time, operation, run, rows, published.
    History {
        /// Asset key.
        key: String,
        /// How many commits (newest first).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Compact an asset's table into fewer, larger files (one commit that changes no rows; readers
    /// of its materializations read the compacted files).
    Optimize {
        /// Asset key.
        key: String,
        /// Sort the files by a Z-order curve over these columns (comma-separated), so that filters on
        /// any of them skip more files.
        #[arg(long, value_delimiter = ',')]
        z_order: Vec<String>,
    },
    /// Remove data files that no version within the retention window needs (nor any version the
    /// published materializations are read at).
    Vacuum {
        /// Asset key.
        key: String,
        /// Keep files removed less than this many hours ago (default: the table's
        /// delta.deletedFileRetentionDuration, 168 hours).
        #[arg(long)]
        retain_hours: Option<u64>,
        /// Allow a retention shorter than the table's (time travel to older versions fails after).
        #[arg(long)]
        force: bool,
        /// List the files without removing them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the selected assets' checks on their latest published materializations and record the
    /// results (exit 1 when an `error` check fails).
    Checks {
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Rollouts of gated assets (an eval with a gate): `status`, `history`, and the operator's audited
    /// `promote` and `rollback`.
    Rollout {
        #[command(subcommand)]
        action: RolloutAction,
    },
    /// Reach a `temporal` asset's workflow: `temporal signal|query KEY NAME [--payload JSON]`.
    Temporal {
        #[command(subcommand)]
        action: TemporalAction,
    },
    /// The online feature store: `features get VIEW ENTITY…` reads entities' newest values.
    Features {
        #[command(subcommand)]
        action: FeaturesAction,
    },
    /// Publish a materialization a failed check kept unpublished: downstream assets read it from now on.
    Publish {
        /// Asset key.
        key: String,
        /// Its Delta version to publish (a source read in place: omit it, its newest observation).
        #[arg(long)]
        version: Option<i64>,
        /// The partition, for a partitioned asset.
        #[arg(long)]
        partition: Option<String>,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Recompute a past materialization with every upstream read at the Delta version it read then,
    /// into a scratch table, and say whether the rows are identical (else how they differ).
    Reproduce {
        /// Asset key.
        key: String,
        /// The materialization of this run (an id or its first characters).
        #[arg(long, conflicts_with = "version")]
        run: Option<String>,
        /// The materialization that wrote this Delta version.
        #[arg(long)]
        version: Option<i64>,
        /// The partition, for a partitioned asset.
        #[arg(long)]
        partition: Option<String>,
    },
    /// Open the terminal UI: the catalog, lineage and runs, live (`?` lists the keys).
    Ui,
    /// Everything about one asset: definition, state and why, partitions, schema with column
    /// lineage, checks, its last materializations and the upstream versions it read.
    Show {
        /// The asset.
        key: String,
    },
    /// Show missing / fresh / stale for each asset, and why.
    Status {
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Show the state of each partition of a partitioned asset, as ranges (fresh / stale / missing /
    /// failed); `partitions add NAME KEY…` adds keys to a dynamic partition set.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Partitions {
        #[command(subcommand)]
        action: Option<PartitionsAction>,
        /// The partitioned asset.
        #[arg(required = true)]
        key: Option<String>,
    },
    /// Show an asset's upstream and/or downstream lineage, or the whole graph (--all).
    Lineage {
        /// Asset key (omit with --all).
        #[arg(required_unless_present = "all")]
        key: Option<String>,
        /// The whole project's graph.
        #[arg(long, conflicts_with_all = ["key", "upstream", "downstream", "depth", "partition"])]
        all: bool,
        /// One partition's recorded lineage: the exact upstream partitions and Delta versions its
        /// latest materialization read, and the materializations that read it.
        #[arg(long, value_name = "KEY")]
        partition: Option<String>,
        /// One column's recorded lineage: the upstream columns it comes from and the downstream
        /// columns computed from it, with how (identity, transformed, aggregated, filter).
        #[arg(long, value_name = "NAME", conflicts_with_all = ["all", "partition"])]
        column: Option<String>,
        /// Only upstream.
        #[arg(long, conflicts_with = "downstream")]
        upstream: bool,
        /// Only downstream.
        #[arg(long)]
        downstream: bool,
        /// Maximum hops.
        #[arg(long)]
        depth: Option<usize>,
        /// Output format (--json means json).
        #[arg(long, value_enum)]
        format: Option<LineageFormat>,
    },
    /// List recent runs.
    Runs {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one run: steps, timings, errors.
    Run {
        /// Run id or a unique prefix.
        id: String,
    },
    /// Print a run's event log.
    Logs {
        /// Run id or a unique prefix.
        run: String,
        /// Only this step's events (its asset key).
        #[arg(long)]
        step: Option<String>,
        /// Keep printing new events until the run ends (with --json: one object per line).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Query the run store (spine.runs, spine.steps, spine.events, spine.materializations, spine.lineage)
    /// and asset tables (by key) with SQL.
    Sql {
        /// The query.
        query: String,
        /// Read an asset's table at a past Delta version (time travel): `--at marts/orders=3`;
        /// repeatable.
        #[arg(long, value_name = "KEY=VERSION")]
        at: Vec<String>,
    },
    /// Measure the engine on generated projects and print a table.
    Bench {
        /// Assets in the chain / fan-out workloads.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Assets in the planning workload.
        #[arg(long, default_value_t = 100_000)]
        plan_n: usize,
        /// Repetitions per workload (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Daily partitions in the large backfill workload.
        #[arg(long, default_value_t = 10_000)]
        backfill: usize,
        /// Measure the run store alone instead (`sqlite` for a fresh SQLite file, or a
        /// `postgres://` URL; repeat for several): steps claimed, started and finished per second.
        #[arg(long)]
        store: Vec<String>,
        /// Concurrent clients for `--store` (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        clients: Vec<usize>,
        /// Steps per store and client count for `--store`, spread over the clients.
        #[arg(long, default_value_t = 4000)]
        steps: usize,
    },
    /// Print a shell completion script (e.g. `assets completions bash > ~/.local/share/bash-completion/completions/assets`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}
