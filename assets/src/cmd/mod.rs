//! One module per CLI verb. Each loads what it needs from the engine and prints.

mod approvals;
mod audit;
mod backfill;
pub mod bench;
mod bench_store;
mod check;
mod checks;
mod column_lineage;
mod control;
mod daemon;
mod doctor;
mod events;
mod features;
mod flags;
pub mod gc;
mod history;
mod init;
mod lineage;
mod list;
mod maintenance;
mod materialize;
mod reproduce;
mod rollout;
mod runs;
mod schedule;
mod selection;
mod show;
mod sql;
mod status;
pub mod telemetry;
#[cfg(feature = "temporal")]
mod temporal;
pub mod vars;
pub mod worker;

use crate::{Cli, Command};

/// Every kind this binary executes: the engine's, `spine-jobs`' (`command`), `spine-features'`
/// (`feature_view`, `online_snapshot`, `training_set`) and `spine-evals'` (`eval`).
pub fn kinds() -> spine_engine::kinds::KindRegistry {
    let mut kinds = spine_jobs::all_kinds();
    spine_features::register(&mut kinds);
    spine_evals::register(&mut kinds);
    kinds
}
use spine_engine::partitions::PartitionSelection;
use spine_engine::{Engine, EngineError};

/// The project folder: `root`, or — when it is the current folder (the default) and holds no
/// `spine.toml` — the nearest parent folder that does, as git and dbt find theirs from a subfolder.
fn find_project(root: std::path::PathBuf) -> std::path::PathBuf {
    if root != std::path::Path::new(".") || root.join("spine.toml").exists() {
        return root;
    }
    let Ok(here) = std::env::current_dir() else {
        return root;
    };
    here.ancestors()
        .find(|d| d.join("spine.toml").is_file())
        .map(|d| d.to_path_buf())
        .unwrap_or(root)
}

/// Runs the command; returns the exit code on completion.
pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let json = cli.json;
    let root = cli.project.clone();
    if let Command::Init { dir } = cli.command {
        return init::run(dir.unwrap_or(root));
    }
    if let Command::Schema { name } = &cli.command {
        return flags::schema(name);
    }
    if let Command::Events {
        action: crate::EventsAction::Verify,
    } = &cli.command
    {
        return events::verify(json);
    }
    let root = find_project(root);
    audit::intend(&cli.command);
    match cli.command {
        Command::Init { .. } | Command::Schema { .. } => unreachable!("handled above"),
        Command::Check => check::run(&root, json).await,
        Command::List { select } => {
            let selection = selection::expand(&root, &select).await?.expression();
            list::run(&root, selection.as_deref(), json).await
        }
        Command::Observe { select } => {
            let selection = match selection::expand(&root, &select).await?.expression() {
                Some(e) => format!("({e}) and kind:source"),
                None => "kind:source".to_string(),
            };
            let opts = materialize::Options {
                force: false,
                full_refresh: false,
                concurrency: None,
                no_wait: false,
                queue: false,
                partitions: PartitionSelection::All,
                fail_fast: false,
                tags: Default::default(),
            };
            materialize::run(&root, Some(selection), opts, json).await
        }
        Command::Materialize {
            select,
            force,
            full_refresh,
            concurrency,
            dry_run,
            no_wait,
            queue,
            partitions,
            fail_fast,
            tags,
        } => {
            let tags = flags::parse_tags(&tags)?;
            let selection = match selection::expand(&root, &select).await? {
                selection::Selected::Nothing(expr) => {
                    println!("nothing to do: '{expr}' selects no asset now");
                    return Ok(0);
                }
                selected => selected.expression(),
            };
            let partitions = PartitionSelection::parse(&partitions).map_err(|m| {
                spine_engine::DefinitionError::new("E0411", format!("--partition: {m}"))
            })?;
            if dry_run {
                materialize::dry_run(&root, selection, force, &partitions, json).await
            } else {
                let opts = materialize::Options {
                    force,
                    full_refresh,
                    concurrency,
                    no_wait,
                    queue,
                    partitions,
                    fail_fast,
                    tags,
                };
                materialize::run(&root, selection, opts, json).await
            }
        }
        Command::Execute {
            run,
            concurrency,
            no_wait,
        } => materialize::execute(&root, run.as_deref(), concurrency, no_wait, json).await,
        Command::Backfill { action, args } => backfill_command(&root, action, args, json).await,
        Command::Daemon { interval, once } => daemon::run(&root, &interval, once, json).await,
        Command::Worker {
            concurrency,
            pool,
            poll,
            exit_when_idle,
            temporal,
        } => {
            let opts = worker::Options {
                concurrency,
                pool,
                poll,
                exit_when_idle,
                temporal,
            };
            worker::run(&root, opts, json).await
        }
        Command::Automation {
            action: crate::AutomationAction::Explain { key, partition },
        } => daemon::explain(&root, &key, partition.as_deref(), json).await,
        Command::Schedules { action: None } => daemon::schedules(&root, json).await,
        Command::Schedules {
            action: Some(crate::ScheduleAction::Preview { name, count }),
        } => schedule::preview(&root, &name, count, json).await,
        Command::Schedules {
            action: Some(crate::ScheduleAction::Fire { name, queue }),
        } => schedule::fire(&root, &name, queue, json).await,
        Command::Sensors => daemon::sensors(&root, json).await,
        Command::Ticks { schedule, limit } => {
            daemon::ticks(&root, schedule.as_deref(), limit, json).await
        }
        Command::Backfills { limit } => backfill::list(&root, limit, json).await,
        Command::Partitions {
            action: Some(crate::PartitionsAction::Add { name, keys }),
            ..
        } => status::add_partitions(&root, &name, &keys, json).await,
        Command::Partitions { key, .. } => {
            status::partitions(&root, key.as_deref().unwrap_or_default(), json).await
        }
        Command::Cancel { run } => control::cancel(&root, &run, json).await,
        Command::Rerun {
            run,
            all,
            queue,
            concurrency,
        } => control::rerun(&root, &run, all, queue, concurrency, json).await,
        Command::Signal { run, step, payload } => {
            runs::signal(&root, &run, &step, payload.as_deref(), json).await
        }
        Command::Approvals => approvals::list(&root, json).await,
        Command::Events {
            action:
                crate::EventsAction::Tail {
                    after,
                    limit,
                    follow,
                },
        } => events::tail(&root, after, limit, follow, json).await,
        Command::Events {
            action: crate::EventsAction::Verify,
        } => unreachable!("handled above"),
        Command::Audit {
            action: None,
            limit,
        } => audit::list(&root, limit, json).await,
        Command::Audit {
            action: Some(crate::AuditAction::Verify),
            ..
        } => audit::verify(&root, json).await,
        Command::Approve { run, step, comment } => {
            approvals::decide(&root, &run, &step, true, comment.as_deref(), json).await
        }
        Command::Reject { run, step, comment } => {
            approvals::decide(&root, &run, &step, false, comment.as_deref(), json).await
        }
        Command::Gc {
            older_than,
            dry_run,
        } => gc::run(&root, older_than, dry_run, json).await,
        Command::Doctor { select, repair } => {
            let selection = selection::expand(&root, &select).await?.expression();
            doctor::run(&root, selection.as_deref(), repair, json).await
        }
        Command::History { key, limit } => history::run(&root, &key, limit, json).await,
        Command::Ui => {
            let engine = engine(&root, None)
                .await?
                .launched_by(format!("ui:{}", spine_engine::user_name()));
            let result = spine_tui::run(engine.clone(), launcher(&root)).await;
            engine.close().await;
            result?;
            Ok(0)
        }
        Command::Reproduce {
            key,
            run,
            version,
            partition,
        } => reproduce::run(&root, &key, run, version, partition, json).await,
        Command::Optimize { key, z_order } => {
            maintenance::optimize(&root, &key, &z_order, json).await
        }
        Command::Vacuum {
            key,
            retain_hours,
            force,
            dry_run,
        } => maintenance::vacuum(&root, &key, retain_hours, force, dry_run, json).await,
        Command::Checks { select } => {
            let selection = selection::expand(&root, &select).await?.expression();
            checks::run(&root, selection.as_deref(), json).await
        }
        Command::Rollout { action } => rollout::run(&root, action, json).await,
        #[cfg(feature = "temporal")]
        Command::Temporal { action } => temporal::run(&root, action, json).await,
        #[cfg(not(feature = "temporal"))]
        Command::Temporal { .. } => Err(anyhow::anyhow!(
            "this build of Spine has no Temporal client: build it with `--features temporal`"
        )),
        Command::Features {
            action: crate::FeaturesAction::Get { view, entities },
        } => features::get(&root, &view, &entities, json).await,
        Command::Publish {
            key,
            version,
            partition,
            reason,
        } => checks::publish(&root, &key, version, partition.as_deref(), &reason, json).await,
        Command::Status { select } => {
            let selection = selection::expand(&root, &select).await?.expression();
            status::run(&root, selection.as_deref(), json).await
        }
        Command::Show { key } => show::run(&root, &key, json).await,
        Command::Lineage {
            key: Some(key),
            column: Some(column),
            upstream,
            downstream,
            depth,
            format,
            ..
        } => {
            let format = format.unwrap_or(if json {
                crate::LineageFormat::Json
            } else {
                crate::LineageFormat::Tree
            });
            column_lineage::run(&root, &key, &column, (upstream, downstream), depth, format).await
        }
        Command::Lineage {
            key: Some(key),
            partition: Some(partition),
            upstream,
            downstream,
            depth,
            format,
            ..
        } => {
            let json = json || format == Some(crate::LineageFormat::Json);
            lineage::partition(&root, &key, &partition, (upstream, downstream), depth, json).await
        }
        Command::Lineage {
            key,
            all,
            upstream,
            downstream,
            depth,
            format,
            partition: _,
            column: _,
        } => {
            let format = format.unwrap_or(if json {
                crate::LineageFormat::Json
            } else {
                crate::LineageFormat::Tree
            });
            let view = lineage::View {
                upstream,
                downstream,
                depth,
                format,
            };
            match key.filter(|_| !all) {
                Some(key) => lineage::run(&root, &key, view).await,
                None => lineage::all(&root, format).await,
            }
        }
        Command::Runs { limit } => runs::list(&root, limit, json).await,
        Command::Run { id } => runs::show(&root, &id, json).await,
        Command::Logs { run, step, follow } => {
            runs::logs(&root, &run, step.as_deref(), follow, json).await
        }
        Command::Sql { query, at } => sql::run(&root, &query, &at, json).await,
        Command::Bench {
            store,
            clients,
            steps,
            ..
        } if !store.is_empty() => bench_store::run(&store, &clients, steps).await,
        Command::Bench {
            n,
            plan_n,
            runs,
            backfill,
            ..
        } => bench::run(n, plan_n, runs, backfill).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "assets", &mut std::io::stdout());
            Ok(0)
        }
    }
}

async fn backfill_command(
    root: &std::path::Path,
    action: Option<crate::BackfillAction>,
    args: crate::BackfillArgs,
    json: bool,
) -> anyhow::Result<u8> {
    use crate::BackfillAction as A;
    match action {
        Some(A::Status { id }) => backfill::show(root, &id, json).await,
        Some(A::Cancel { id }) => backfill::cancel(root, &id, json).await,
        Some(A::Resume {
            id,
            concurrency,
            fail_fast,
        }) => {
            let run = backfill::RunArgs {
                concurrency,
                json,
                fail_fast,
                tags: Default::default(),
            };
            backfill::resume(root, &id, run).await
        }
        None => {
            let partitions = match (&args.from, &args.to) {
                (Some(a), Some(b)) => vec![format!("{a}..{b}")],
                _ => args.partitions.clone(),
            };
            let partitions = PartitionSelection::parse(&partitions).map_err(|m| {
                spine_engine::DefinitionError::new("E0411", format!("backfill partitions: {m}"))
            })?;
            let filter = match (args.missing, args.failed) {
                (true, _) => spine_engine::BackfillFilter::Missing,
                (_, true) => spine_engine::BackfillFilter::Failed,
                _ => spine_engine::BackfillFilter::All,
            };
            let selection = match selection::expand(root, &args.select).await? {
                selection::Selected::Nothing(expr) => {
                    println!("nothing to do: '{expr}' selects no asset now");
                    return Ok(0);
                }
                selected => selected.expression(),
            };
            let req = spine_engine::BackfillRequest {
                selection,
                partitions,
                filter,
                per_run: args.per_run,
                concurrency: args.concurrency,
            };
            let run = backfill::RunArgs {
                concurrency: args.concurrency,
                json,
                fail_fast: args.fail_fast,
                tags: flags::parse_tags(&args.tags)?,
            };
            backfill::create(root, req, args.queue, run).await
        }
    }
}

/// Loads the project with every kind this binary knows, checks `selection` against it, and only then
/// opens the run store and warehouse (so invalid input never touches stored state).
pub async fn engine(
    root: &std::path::Path,
    selection: Option<&str>,
) -> Result<Engine, EngineError> {
    let kinds = crate::cmd::kinds();
    let project = spine_engine::loader::load_project(root, &kinds)?;
    spine_engine::selection::select(&project, selection)?;
    let engine = Engine::open(project, kinds).await?;
    // A mutating command is recorded before it acts (and not at all if it cannot be).
    if let Err(e) = audit::flush(&engine).await {
        engine.close().await;
        return Err(e);
    }
    Ok(engine)
}

/// 2 for invalid input, 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<EngineError>() {
        Some(ee) if ee.is_user_error() => 2,
        _ if e.downcast_ref::<spine_engine::DefinitionErrors>().is_some() => 2,
        _ if e.downcast_ref::<spine_engine::DefinitionError>().is_some() => 2,
        _ if e
            .downcast_ref::<spine_engine::error::StoreError>()
            .is_some_and(|s| s.is_user_error()) =>
        {
            2
        }
        _ => 1,
    }
}

/// The error as the user sees it: the message, then each cause its message does not already include
/// (errors that wrap a source often repeat it in their own text).
pub fn render_error(e: &anyhow::Error) -> String {
    spine_engine::redact::redacted(render_unredacted(e))
}

fn render_unredacted(e: &anyhow::Error) -> String {
    if let Some(EngineError::Definition(d)) = e.downcast_ref::<EngineError>() {
        return d.to_string();
    }
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    format!("error: {msg}")
}

/// How the UI starts the runs it records: `assets execute RUN` as a process of its own (in its own
/// process group, its output discarded: the run's events are in the store), so a run outlives the
/// UI and a terminal's signals do not reach it.
fn launcher(root: &std::path::Path) -> spine_tui::Launcher {
    let root = root.to_path_buf();
    std::sync::Arc::new(move |run: &spine_engine::RunId| {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut child = std::process::Command::new(exe)
            .args(["execute", run.as_str()])
            .current_dir(&root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start `assets execute`: {e}"))?;
        // Reap it when it ends (the UI may quit first; then init does).
        std::thread::spawn(move || child.wait());
        Ok(())
    })
}
