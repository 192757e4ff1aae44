//! `assets materialize`: run the selection with a progress bar; Ctrl-C cancels cleanly.

use crate::output::millis;
use indicatif::{ProgressBar, ProgressStyle};
use spine_engine::partitions::PartitionSelection;
use spine_engine::store::SHORT_ID_LEN;
use spine_engine::store::{RunStatus, StepStatus};
use spine_engine::{
    CancellationToken, ExecuteOptions, RunId, RunObserver, StepKey, StepQueue, StepReport,
};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

/// Draws a run's (or a backfill's) progress: a bar on a terminal, a line per step otherwise.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    /// The bar counts a whole backfill (its length is set once, not per run).
    whole: bool,
    /// Partition steps that were fresh or skipped, counted per (asset, symbol) instead of a line
    /// each, so the one that failed is not buried (printed by [`Progress::finish`]).
    quiet: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), usize>>,
    /// The lines of failed steps, printed last by [`Progress::finish`], where they cannot scroll
    /// away.
    failures: std::sync::Mutex<Vec<String>>,
    /// `--fail-fast`: cancelled at the first failed step.
    pub(super) stop_on_failure: std::sync::OnceLock<CancellationToken>,
}

impl Progress {
    /// A bar on a terminal (unless `json`), plain lines otherwise; `total` fixes the bar's length (a
    /// backfill's steps) instead of taking each run's.
    pub(super) fn new(json: bool, total: Option<u64>) -> Arc<Self> {
        let tty = std::io::stderr().is_terminal() && !json;
        let bar = tty.then(|| {
            let b = ProgressBar::new(total.unwrap_or(0));
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        });
        Arc::new(Progress {
            bar,
            lines: !tty && !json,
            whole: total.is_some(),
            quiet: Default::default(),
            failures: Default::default(),
            stop_on_failure: Default::default(),
        })
    }

    /// Prints the counts of fresh and skipped partitions per asset, and clears the bar.
    pub(super) fn finish(&self) {
        let quiet = std::mem::take(&mut *self.quiet.lock().expect("progress lock"));
        let summaries = quiet.into_iter().map(|((asset, what), n)| {
            let symbol = if what == "fresh" { "=" } else { "-" };
            format!("{symbol} {asset}  {n} partition(s) {what}")
        });
        let failures = std::mem::take(&mut *self.failures.lock().expect("progress lock"));
        for line in summaries.chain(failures) {
            match &self.bar {
                Some(b) => b.println(line),
                None if self.lines => println!("{line}"),
                None => {}
            }
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A token that Ctrl-C cancels (a second Ctrl-C exits at once).
pub(super) fn ctrl_c_token(what: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: cancelling the {what} (press Ctrl-C again to abort at once)");
            c2.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    cancel
}

fn symbol(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Succeeded => "✓",
        StepStatus::UpToDate => "=",
        StepStatus::Failed => "✗",
        StepStatus::Skipped => "-",
        StepStatus::Waiting => "…",
        _ => "!",
    }
}

fn describe(r: &StepReport) -> String {
    match r.status {
        // A source observed (nothing written).
        StepStatus::Succeeded if r.delta_version.is_none() => format!(
            "{} rows observed, {}",
            r.rows.unwrap_or(0),
            millis(r.duration_ms)
        ),
        StepStatus::Succeeded => format!(
            "{} rows, Delta v{}, {}{}",
            r.rows.unwrap_or(0),
            r.delta_version.unwrap_or(0),
            millis(r.duration_ms),
            if r.attempts > 1 {
                format!(" (attempt {})", r.attempts)
            } else {
                String::new()
            }
        ),
        StepStatus::UpToDate => r.reason.clone().unwrap_or_else(|| "fresh".into()),
        StepStatus::Failed => format!(
            "failed{}: {}",
            r.failure_class
                .map(|c| format!(" ({}, attempt {})", c.as_str(), r.attempts))
                .unwrap_or_default(),
            r.error.clone().unwrap_or_default()
        ),
        StepStatus::Skipped => format!("skipped: {}", r.reason.clone().unwrap_or_default()),
        StepStatus::Waiting => format!("waiting: {}", r.reason.clone().unwrap_or_default()),
        s => format!("{s}: {}", r.reason.clone().unwrap_or_default()),
    }
}

impl RunObserver for Progress {
    fn planned(&self, run_id: &RunId, steps: &[StepKey]) {
        if let Some(b) = &self.bar {
            if !self.whole {
                b.set_length(steps.len() as u64);
            }
            b.set_message(format!("run {}", &run_id.as_str()[..SHORT_ID_LEN]));
        } else if self.lines {
            println!("run {run_id}: {} step(s)", steps.len());
        }
    }
    fn step_started(&self, key: &StepKey, attempt: u32) {
        if let Some(b) = &self.bar {
            b.set_message(if attempt > 1 {
                format!("{key} (attempt {attempt})")
            } else {
                key.to_string()
            });
        }
    }
    fn step_finished(&self, r: &StepReport) {
        let counted = match r.status {
            StepStatus::UpToDate => Some("fresh"),
            StepStatus::Skipped => Some("skipped"),
            _ => None,
        };
        if let (Some(what), Some(_)) = (counted, &r.partition) {
            *self
                .quiet
                .lock()
                .expect("progress lock")
                .entry((r.key.to_string(), what))
                .or_default() += 1;
            if let Some(b) = &self.bar {
                b.inc(1);
            }
            return;
        }
        let line = format!("{} {}  {}", symbol(r.status), r.step(), describe(r));
        if r.status == StepStatus::Failed {
            if let Some(stop) = self.stop_on_failure.get().filter(|t| !t.is_cancelled()) {
                eprintln!(
                    "--fail-fast: {} failed; cancelling the rest of the run",
                    r.step()
                );
                stop.cancel();
            }
            self.failures.lock().expect("progress lock").push(line);
            if let Some(b) = &self.bar {
                b.inc(1);
            }
            return;
        }
        match &self.bar {
            Some(b) => {
                b.inc(1);
                if r.status != StepStatus::UpToDate {
                    b.println(line);
                }
            }
            None if self.lines => println!("{line}"),
            None => {}
        }
    }
}

/// How `materialize` runs.
pub struct Options {
    pub force: bool,
    /// Incremental assets rebuild (`--full-refresh`).
    pub full_refresh: bool,
    pub concurrency: Option<usize>,
    pub no_wait: bool,
    /// Only record the run as queued (`--queue`).
    pub queue: bool,
    /// Which partitions (`--partition`).
    pub partitions: PartitionSelection,
    /// Stop at the first failed step (`--fail-fast`).
    pub fail_fast: bool,
    /// Tags on the run (`--tag`).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// `assets materialize`: submit a run of the selection, then execute it here (or, with `--queue`,
/// leave it queued for `assets execute`).
pub async fn run(
    root: &Path,
    selection: Option<String>,
    opts: Options,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection.as_deref())
        .await?
        .with_tags(opts.tags.clone());
    // Before anything is recorded: the executor's queue must be reachable.
    let steps_to = match opts.queue {
        false => super::worker::executor_queue(&engine).await?,
        true => None,
    };
    let run_id = engine
        .submit_with(
            selection.as_deref(),
            opts.force,
            opts.full_refresh,
            &opts.partitions,
        )
        .await?;
    if opts.queue {
        let short = crate::output::short_run(engine.reader().as_ref(), &run_id).await;
        let steps = engine.reader().steps(&run_id).await?.len();
        engine.close().await;
        if json {
            crate::output::json(
                &serde_json::json!({"run_id": run_id, "status": "queued", "steps": steps}),
            )?;
        } else {
            println!("queued run {run_id} ({steps} step(s)); run it with: assets execute {short}");
        }
        return Ok(0);
    }
    let how = (opts.no_wait, opts.fail_fast);
    drive(&engine, &run_id, opts.concurrency, how, steps_to, json).await
}

/// `assets execute [RUN]`: execute a queued run (default: the oldest queued one) in this process.
pub async fn execute(
    root: &Path,
    run: Option<&str>,
    concurrency: Option<usize>,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let steps_to = super::worker::executor_queue(&engine).await?;
    let run_id = match run {
        Some(r) => engine.reader().get_run(r).await?.run_id,
        None => {
            let queued = engine
                .reader()
                .active_runs()
                .await?
                .into_iter()
                .filter(|r| r.status == RunStatus::Queued)
                .min_by(|a, b| a.run_id.cmp(&b.run_id));
            match queued {
                Some(r) => r.run_id,
                None => {
                    engine.close().await;
                    eprintln!("no queued run; `assets materialize --queue` queues one");
                    return Ok(0);
                }
            }
        }
    };
    drive(
        &engine,
        &run_id,
        concurrency,
        (no_wait, false),
        steps_to,
        json,
    )
    .await
}

/// Executes a run through the project's step queue (`[executor] kind = "temporal"`): its steps run
/// on `assets worker --temporal` processes; a cancel here (Ctrl-C) asks them to cancel the run.
async fn dispatch(
    engine: &spine_engine::Engine,
    run_id: &spine_engine::RunId,
    queue: Arc<dyn StepQueue>,
    cancel: CancellationToken,
    json: bool,
) -> anyhow::Result<spine_engine::RunReport> {
    if !json {
        eprintln!(
            "run {run_id}: steps go to {}; `assets worker --temporal` executes them",
            queue.describe()
        );
    }
    {
        let (engine, id, cancel) = (engine.clone(), run_id.clone(), cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            if let Err(e) = engine.cancel_run(id.as_str()).await {
                eprintln!("cannot cancel run {id}: {e}");
            }
        });
    }
    let poll = std::time::Duration::from_millis(200);
    Ok(engine
        .dispatch(run_id, queue, poll, CancellationToken::new())
        .await?)
}

/// Executes a recorded run with a progress bar (or lines), Ctrl-C cancelling it, and prints the report.
pub(super) async fn drive(
    engine: &spine_engine::Engine,
    run_id: &spine_engine::RunId,
    concurrency: Option<usize>,
    (no_wait, fail_fast): (bool, bool),
    steps_to: Option<Arc<dyn StepQueue>>,
    json: bool,
) -> anyhow::Result<u8> {
    let cancel = ctrl_c_token("run");
    let progress = Progress::new(json, None);
    if fail_fast {
        let _ = progress.stop_on_failure.set(cancel.clone());
    }
    let opts = ExecuteOptions {
        concurrency,
        cancel,
        observer: Some(progress.clone()),
        no_wait,
    };
    let report = match steps_to {
        Some(queue) => dispatch(engine, run_id, queue, opts.cancel, json).await,
        None => engine.execute(run_id, opts).await.map_err(Into::into),
    };
    progress.finish();
    // Programs of abandoned steps get their grace period and SIGKILL before this process exits.
    let _ = tokio::task::spawn_blocking(spine_jobs::command::wait_for_abandoned_groups).await;
    let report = report?;
    if json {
        crate::output::json(&report)?;
    } else {
        println!(
            "run {} {}: {} materialized, {} up to date, {} failed, {} skipped{} in {}",
            report.run_id,
            report.status,
            report.count(StepStatus::Succeeded),
            report.count(StepStatus::UpToDate),
            report.count(StepStatus::Failed),
            report.count(StepStatus::Skipped),
            match report.count(StepStatus::Cancelled) {
                0 => String::new(),
                n => format!(", {n} cancelled"),
            },
            millis(report.duration_ms)
        );
        if report.count(StepStatus::Succeeded) == 0
            && report.count(StepStatus::UpToDate) > 0
            && report.status == RunStatus::Succeeded
        {
            println!("everything selected is fresh; use --force to recompute");
        }
    }
    engine.close().await;
    // A run parked on a signal has not failed: it resumes with `assets execute` once signalled.
    Ok(match report.status {
        RunStatus::Succeeded | RunStatus::Waiting => 0,
        _ => 1,
    })
}

/// `materialize --dry-run`: the plan, each step with whether it would run and why; nothing recorded.
pub async fn dry_run(
    root: &Path,
    selection: Option<String>,
    force: bool,
    partitions: &PartitionSelection,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection.as_deref()).await?;
    let plan = engine
        .dry_run(selection.as_deref(), force, partitions)
        .await?;
    engine.close().await;
    if json {
        crate::output::json(&plan)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|s| {
            vec![
                s.step().to_string(),
                if s.run { "run" } else { "skip" }.to_string(),
                s.reason.clone(),
            ]
        })
        .collect();
    crate::output::table(&["step", "action", "why"], &rows);
    let n = plan.iter().filter(|s| s.run).count();
    println!(
        "dry run: {n} of {} step(s) would run; nothing was run or recorded",
        plan.len()
    );
    Ok(0)
}
