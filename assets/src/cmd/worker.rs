//! `assets worker`: takes queued runs and executes their steps, shared with every other worker on the
//! same run store (see `spine_engine`'s worker module).

use spine_engine::{CancellationToken, WorkerOptions};
use std::path::Path;

/// The command line of `assets worker`.
pub struct Options {
    pub concurrency: Option<usize>,
    pub pool: Option<String>,
    pub poll: String,
    pub exit_when_idle: bool,
}

/// `assets worker [--concurrency N] [--pool NAME] [--poll D] [--exit-when-idle]`.
pub async fn run(root: &Path, opts: Options, json: bool) -> anyhow::Result<u8> {
    let poll = super::daemon::parse_interval(&opts.poll)?;
    if opts.concurrency == Some(0) {
        let e = spine_engine::DefinitionError::new("E0104", "--concurrency must be at least 1")
            .hint("e.g. --concurrency 4");
        return Err(e.into());
    }
    let engine = super::engine(root, None).await?;
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            super::daemon::shutdown_signal().await;
            eprintln!("stopping: finishing the steps under way (signal again to exit at once)");
            stop.cancel();
            super::daemon::shutdown_signal().await;
            std::process::exit(130);
        });
    }
    let concurrency = opts
        .concurrency
        .unwrap_or(engine.project().config.settings.concurrency);
    if !json {
        println!(
            "worker for {}: {concurrency} step(s) at once{}",
            engine.project().config.name,
            opts.pool
                .as_deref()
                .map(|p| format!(", pool {p}"))
                .unwrap_or_default()
        );
    }
    let result = engine
        .work(WorkerOptions {
            concurrency,
            pool: opts.pool,
            poll,
            exit_when_idle: opts.exit_when_idle,
            cancel: stop,
            queue: None,
        })
        .await;
    let _ = tokio::task::spawn_blocking(spine_jobs::command::wait_for_abandoned_groups).await;
    engine.close().await;
    let report = result?;
    if json {
        crate::output::json(&report)?;
    } else {
        println!(
            "worker done: {} step(s), {} re-claimed, {} run(s) ended",
            report.steps, report.reclaimed, report.runs_ended
        );
    }
    Ok(0)
}
