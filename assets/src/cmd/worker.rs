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
    pub temporal: bool,
}

/// `assets worker [--concurrency N] [--pool NAME] [--poll D] [--exit-when-idle] [--temporal]`.
pub async fn run(root: &Path, opts: Options, json: bool) -> anyhow::Result<u8> {
    let poll = super::daemon::parse_interval(&opts.poll)?;
    if opts.concurrency == Some(0) {
        let e = spine_engine::DefinitionError::new("E0104", "--concurrency must be at least 1")
            .hint("e.g. --concurrency 4");
        return Err(e.into());
    }
    let engine = super::engine(root, None).await?;
    let queue = match opts.temporal {
        true => {
            if opts.pool.is_some() {
                let e = spine_engine::DefinitionError::new(
                    "E0104",
                    "--pool does not apply to --temporal: Temporal's task queue decides who takes a step",
                )
                .hint("give workers of another pool their own project with its own `[executor] task_queue`");
                return Err(e.into());
            }
            Some(queue(&engine).await?)
        }
        false => None,
    };
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
            "worker for {}: {concurrency} step(s) at once{}{}",
            engine.project().config.name,
            opts.pool
                .as_deref()
                .map(|p| format!(", pool {p}"))
                .unwrap_or_default(),
            queue
                .as_ref()
                .map(|q| format!(", steps from {}", q.describe()))
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
            queue,
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

/// Where the project's steps go: `None` in process (the default), else its queue, connected.
pub(super) async fn executor_queue(
    engine: &spine_engine::Engine,
) -> anyhow::Result<Option<std::sync::Arc<dyn spine_engine::StepQueue>>> {
    match engine.project().config.executor.kind {
        spine_schemas::definitions::ExecutorKind::InProcess => Ok(None),
        spine_schemas::definitions::ExecutorKind::Temporal => Ok(Some(queue(engine).await?)),
    }
}

/// The project's step queue (`[executor] kind = "temporal"`), connected.
#[cfg(feature = "temporal")]
pub(super) async fn queue(
    engine: &spine_engine::Engine,
) -> anyhow::Result<std::sync::Arc<dyn spine_engine::StepQueue>> {
    use spine_jobs::temporal::queue::{QueueSettings, TemporalQueue};
    let section = &engine.project().config.executor;
    let toml = engine.project().config.root.join("spine.toml");
    if section.kind != spine_schemas::definitions::ExecutorKind::Temporal {
        let e = spine_engine::DefinitionError::new(
            "E0104",
            "--temporal needs `[executor] kind = \"temporal\"` in spine.toml",
        )
        .at(&toml, None)
        .hint("add [executor] with kind = \"temporal\" and the address of Temporal's frontend (docs/guide/temporal.md)");
        return Err(e.into());
    }
    let settings = QueueSettings::from_section(section).map_err(|m| {
        spine_engine::DefinitionError::new("E0104", m)
            .at(&toml, None)
            .hint("see `[executor]` in docs/reference/project.md")
    })?;
    let q = TemporalQueue::connect(settings)
        .await
        .map_err(|m| anyhow::anyhow!("{m}; is Temporal running? (`temporal server start-dev`)"))?;
    Ok(std::sync::Arc::new(q))
}

/// Without the Temporal client, `[executor] kind = "temporal"` cannot be served.
#[cfg(not(feature = "temporal"))]
pub(super) async fn queue(
    _engine: &spine_engine::Engine,
) -> anyhow::Result<std::sync::Arc<dyn spine_engine::StepQueue>> {
    anyhow::bail!("this build of Spine has no Temporal client: build it with `--features temporal`")
}
