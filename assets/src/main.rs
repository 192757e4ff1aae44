//! `assets`: the Spine command line. Parses arguments, calls the engine, prints. Exit codes: 0 success,
//! 1 the work failed, 2 bad usage or an invalid project.

mod cmd;
mod output;

use clap::{Parser, Subcommand, ValueEnum};

/// glibc malloc fragments badly under DataFusion's and the loader's allocation patterns; mimalloc halves
/// allocation time (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

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
        /// Selection, e.g. '+marts/revenue', 'group:staging', 'raw/*'.
        selection: Option<String>,
    },
    /// Materialize the selected assets (fresh ones are skipped unless --force).
    Materialize {
        /// Selection (default: everything).
        selection: Option<String>,
        /// Recompute fresh assets too.
        #[arg(long)]
        force: bool,
        /// Steps to run at once.
        #[arg(long, short = 'c')]
        concurrency: Option<usize>,
    },
    /// Show missing / fresh / stale for each asset, and why.
    Status {
        /// Selection (default: everything).
        selection: Option<String>,
    },
    /// Show an asset's upstream and/or downstream lineage.
    Lineage {
        /// Asset key.
        key: String,
        /// Only upstream.
        #[arg(long, conflicts_with = "downstream")]
        upstream: bool,
        /// Only downstream.
        #[arg(long)]
        downstream: bool,
        /// Maximum hops.
        #[arg(long)]
        depth: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LineageFormat::Tree)]
        format: LineageFormat,
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
    },
    /// Query the run store (spine.runs, spine.steps, spine.events, spine.materializations, spine.lineage)
    /// and asset tables (by key) with SQL.
    Sql {
        /// The query.
        query: String,
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
    },
}

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader goes away (`assets runs | head`): exit quietly
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    cmd::telemetry::init(cli.log_format, cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Run on a worker thread: they have the large stacks configured above.
    let result = runtime.block_on(async {
        tokio::spawn(cmd::dispatch(cli))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}")))
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = cmd::exit_code(&e);
            eprintln!("{}", cmd::render_error(&e));
            ExitCode::from(code)
        }
    }
}
