//! `command`: runs any program and commits what it writes.
//!
//! The program receives its context in environment variables (documented in docs/guide/command-assets.md):
//! `SPINE_RUN_ID`, `SPINE_STEP_ID`, `SPINE_ASSET_KEY`, `SPINE_PARTITION_KEY`, `SPINE_ATTEMPT`,
//! `SPINE_PROJECT_DIR`, `SPINE_OUTPUT_DIR` (where to write `*.parquet`, `*.csv` or `*.jsonl` files),
//! `SPINE_UPSTREAM_<KEY>` (each upstream's Delta table location), `SPINE_FILES_<KEY>` (a folder holding
//! exactly the data files of the version read), `SPINE_INPUT_<KEY>` (an export of each upstream when
//! `input_format` is set) and `SPINE_UPSTREAMS` (all of it as JSON). Each stdout line that
//! is a JSON object with a `type` (`log`, `metadata`, `check`) is recorded as such; other lines are logs.

use datafusion::dataframe::DataFrameWriteOptions;
use futures::future::BoxFuture;
use spine_engine::error::DefinitionError;
use spine_engine::kinds::{
    AssetKind, CheckResult, KindConfig, KindDefinition, StepContext, StepData, StepError,
    StepOutput,
};
use spine_schemas::events::{CommandMessage, Event};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::BufReader;
use tokio::process::Command;

/// The `command` kind.
pub struct CommandKind;

impl AssetKind for CommandKind {
    fn name(&self) -> &'static str {
        "command"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        config::configure(def)
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(run_command(ctx))
    }
}

mod config;
mod process;

pub use config::{CommandConfig, Format};
pub use process::wait_for_abandoned_groups;

fn location(url: &url::Url) -> String {
    if url.scheme() == "file" {
        if let Ok(p) = url.to_file_path() {
            return p.display().to_string();
        }
    }
    url.to_string()
}

async fn export_input(
    ctx: &StepContext,
    key: &spine_engine::AssetKey,
    format: &str,
    dir: &Path,
) -> Result<PathBuf, StepError> {
    let path = dir.join(format!("{}.{format}", key.as_str().replace('/', "__")));
    let df = ctx
        .session
        .table(key.as_str())
        .await
        .map_err(|e| StepError::retryable(format!("cannot read upstream '{key}': {e}")))?;
    let opts = DataFrameWriteOptions::new().with_single_file_output(true);
    let p = path.display().to_string();
    let res = match format {
        "csv" => df.write_csv(&p, opts, None).await,
        "jsonl" => df.write_json(&p, opts, None).await,
        _ => df.write_parquet(&p, opts, None).await,
    };
    res.map_err(|e| {
        StepError::retryable(format!("cannot export upstream '{key}' as {format}: {e}"))
    })?;
    Ok(path)
}

/// The exact data files of the upstream version this step reads, and (for a local warehouse) a folder
/// of links to just those files, so `read_parquet('<folder>/*.parquet')` cannot pick up rows of older
/// versions that still lie in the table's folder.
async fn upstream_files(
    ctx: &StepContext,
    u: &spine_engine::kinds::UpstreamInput,
    dir: &Path,
) -> Result<(Vec<String>, Option<PathBuf>), StepError> {
    let urls = ctx
        .warehouse
        .data_files(&u.key, u.delta_version)
        .await
        .map_err(|e| {
            StepError::retryable(format!(
                "cannot list the files of upstream '{}' at Delta version {}: {e}",
                u.key, u.delta_version
            ))
        })?;
    let local: Option<Vec<PathBuf>> = urls.iter().map(|u| u.to_file_path().ok()).collect();
    let files: Vec<String> = urls.iter().map(location).collect();
    let Some(local) = local else {
        return Ok((files, None));
    };
    let folder = dir.join(u.key.as_str().replace('/', "__"));
    std::fs::create_dir_all(&folder)
        .map_err(|e| StepError::retryable(format!("cannot create {}: {e}", folder.display())))?;
    for (i, f) in local.iter().enumerate() {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("part-{i}.parquet"));
        let link = folder.join(format!("{i:05}-{name}"));
        link_file(f, &link)?;
    }
    Ok((files, Some(folder)))
}

fn link_file(target: &Path, link: &Path) -> Result<(), StepError> {
    #[cfg(unix)]
    let r = std::os::unix::fs::symlink(target, link);
    #[cfg(not(unix))]
    let r = std::fs::copy(target, link).map(|_| ());
    r.map_err(|e| StepError::retryable(format!("cannot link {}: {e}", target.display())))
}

async fn run_command(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let Some(CommandConfig {
        argv,
        env,
        cwd,
        output_format,
        input_format,
        permanent_exit_codes,
    }) = ctx.spec.body.config::<CommandConfig>()
    else {
        return Err(StepError::permanent(
            "internal: command kind got a body that is not a command",
        ));
    };
    let out_dir = ctx.scratch.join("output");
    let in_dir = ctx.scratch.join("inputs");
    let files_dir = ctx.scratch.join("upstream");
    for d in [&out_dir, &in_dir] {
        std::fs::create_dir_all(d)
            .map_err(|e| StepError::retryable(format!("cannot create {}: {e}", d.display())))?;
    }
    let mut program = PathBuf::from(&argv[0]);
    if program.is_relative() && argv[0].contains('/') {
        program = cwd.join(program);
    }
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("SPINE_RUN_ID", ctx.run_id.as_str())
        .env("SPINE_STEP_ID", ctx.step.to_string())
        .env("SPINE_ASSET_KEY", ctx.spec.key.as_str())
        .env(
            "SPINE_PARTITION_KEY",
            ctx.step
                .partition
                .as_ref()
                .map(|p| p.as_str())
                .unwrap_or_default(),
        )
        .env("SPINE_ATTEMPT", ctx.attempt.to_string())
        .env(
            "SPINE_SIGNAL",
            ctx.signal
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        )
        .env("SPINE_PROJECT_DIR", &ctx.project_root)
        .env("SPINE_OUTPUT_DIR", &out_dir);
    process::isolate(&mut cmd);
    let mut upstreams = serde_json::Map::new();
    for u in &ctx.upstream {
        let loc = location(&u.table_url);
        let suffix = u.key.env_suffix();
        cmd.env(format!("SPINE_UPSTREAM_{suffix}"), &loc);
        // A source read in place has no Delta files: its rows come through `input_format`.
        let (files, folder) = if u.delta_version < 0 {
            if input_format.is_none() {
                return Err(StepError::permanent(format!(
                    "upstream '{}' is a source read in place (no Delta table): set `input_format: \
                     parquet` (or csv, jsonl) to get its rows in SPINE_INPUT_{suffix}, or \
                     `snapshot: true` on the source",
                    u.key
                )));
            }
            (Vec::new(), None)
        } else {
            upstream_files(ctx, u, &files_dir).await?
        };
        let mut entry =
            serde_json::json!({"table": loc, "delta_version": u.delta_version, "files": files});
        if let Some(folder) = folder {
            cmd.env(format!("SPINE_FILES_{suffix}"), &folder);
            entry["snapshot"] = serde_json::Value::String(folder.display().to_string());
        }
        if let Some(f) = input_format {
            let p = export_input(ctx, &u.key, f.as_str(), &in_dir).await?;
            cmd.env(format!("SPINE_INPUT_{suffix}"), &p);
            entry["input"] = serde_json::Value::String(p.display().to_string());
        }
        upstreams.insert(u.key.to_string(), entry);
    }
    cmd.env(
        "SPINE_UPSTREAMS",
        serde_json::Value::Object(upstreams).to_string(),
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| {
        StepError::permanent(format!("cannot start '{}': {e} (is it installed and on PATH? relative paths resolve against {})", argv[0], cwd.display()))
    })?;
    // From here on, abandoning the step (cancel, timeout) ends the program and all it started.
    let mut group = process::ProcessGroup::new(child.id());
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| StepError::msg("no stdout pipe"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| StepError::msg("no stderr pipe"))?;
    let events = ctx.events.clone();
    let stderr_task = tokio::spawn(async move {
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        while let Ok(Some(line)) = process::next_line(&mut reader, &mut buf).await {
            events.log(process::stderr_level(&line), &line).await;
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail
    });
    let mut output = StepOutput::data(StepData::Batches(Vec::new()));
    let mut retry_after = None;
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    let mut number = 0;
    while let Some(line) = process::next_line(&mut reader, &mut buf)
        .await
        .map_err(|e| StepError::retryable(format!("reading stdout: {e}")))?
    {
        number += 1;
        handle_line(ctx, number, &line, &mut output, &mut retry_after).await?;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| StepError::retryable(format!("waiting for the command: {e}")))?;
    group.disarm();
    let tail = stderr_task.await.unwrap_or_default();
    if !status.success() {
        let code = status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "a signal".into());
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!(
                "; its last stderr lines:\n{}",
                tail.into_iter().collect::<Vec<_>>().join("\n")
            )
        };
        let message = format!("command {:?} exited with {code}{detail}", argv);
        // A declared permanent exit code fails the step without retries; anything else may pass.
        return Err(match status.code() {
            Some(c) if permanent_exit_codes.contains(&c) => {
                StepError::permanent(format!("{message} (declared permanent: not retried)"))
            }
            _ => match retry_after {
                // The program said when another attempt may come (a rate limit's Retry-After).
                Some(after) => StepError::retryable(message).with_retry_after(after),
                None => StepError::retryable(message),
            },
        });
    }
    // A program that asked to wait parks the step; whatever it wrote is not committed.
    if !matches!(output.data, StepData::Waiting { .. }) {
        output.data = collect_outputs(&out_dir, output_format.map(Format::as_str))?;
    }
    Ok(output)
}

/// The protocol's message types; a JSON line whose `type` is one of these must match the schema exactly.
const PROTOCOL_TYPES: [&str; 5] = ["log", "metadata", "check", "wait", "retry_after"];

/// Records one stdout line. A line that claims to be a protocol message (a JSON object whose `type` is
/// `log`, `metadata`, `check`, `wait` or `retry_after`) but does not match the schema in
/// `spine_schemas::events::CommandMessage`
/// (an unknown severity, `"passed": 0`, a missing field) is a protocol error: the step fails, naming the
/// line, so a failed check can never be lost. Other lines, JSON or not, are info logs.
async fn handle_line(
    ctx: &StepContext,
    number: usize,
    line: &str,
    output: &mut StepOutput,
    retry_after: &mut Option<std::time::Duration>,
) -> Result<(), StepError> {
    let trimmed = line.trim();
    let claimed_type = trimmed
        .starts_with('{')
        .then(|| serde_json::from_str::<serde_json::Value>(trimmed).ok())
        .flatten()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .filter(|t| PROTOCOL_TYPES.contains(&t.as_str()));
    if claimed_type.is_none() {
        ctx.events.log("info", line).await;
        return Ok(());
    }
    let message = serde_json::from_str::<CommandMessage>(trimmed).map_err(|e| {
        StepError::permanent(format!(
            "protocol error on stdout line {number}: {e}; the line was: {line} \
             (see docs/guide/command-assets.md; nothing was committed)"
        ))
    })?;
    match message {
        CommandMessage::Log { level, message } => ctx.events.log(&level, &message).await,
        CommandMessage::Metadata { data } => {
            let event = Event::Metadata { data: data.clone() };
            ctx.events.emit(event, "metadata reported").await;
            output.metadata.extend(data);
        }
        CommandMessage::Check {
            name,
            passed,
            severity,
            message,
        } => {
            output.checks.push(CheckResult {
                name,
                passed,
                severity,
                message,
            });
        }
        CommandMessage::Wait { reason } => output.data = StepData::Waiting { reason },
        CommandMessage::RetryAfter { seconds } => {
            if !(0.0..=86_400.0).contains(&seconds) {
                return Err(StepError::permanent(format!(
                    "protocol error on stdout line {number}: retry_after seconds must be from 0 to \
                     86400, got {seconds}; the line was: {line} (nothing was committed)"
                )));
            }
            *retry_after = Some(std::time::Duration::from_secs_f64(seconds));
        }
    }
    Ok(())
}

/// Lists the files a program wrote and works out their format.
fn collect_outputs(dir: &Path, declared: Option<&str>) -> Result<StepData, StepError> {
    let mut paths = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StepError::retryable(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file()
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n.starts_with('_'))
        {
            paths.push(p);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(StepError::permanent(format!(
            "the command wrote no output files; write *.parquet, *.csv or *.jsonl into $SPINE_OUTPUT_DIR ({})",
            dir.display()
        )));
    }
    let format_of = |p: &Path| match p.extension().and_then(|e| e.to_str()) {
        Some("parquet") => Some("parquet"),
        Some("csv") => Some("csv"),
        Some("jsonl" | "ndjson" | "json") => Some("jsonl"),
        _ => None,
    };
    let format = match declared {
        Some(f) => f.to_string(),
        None => {
            let mut formats: Vec<&str> = paths.iter().filter_map(|p| format_of(p)).collect();
            formats.dedup();
            match formats.as_slice() {
                [one] if formats.len() == 1 && paths.iter().all(|p| format_of(p).is_some()) => one.to_string(),
                _ => {
                    return Err(StepError::permanent(format!(
                        "cannot tell the output format from {:?}; use one of .parquet, .csv, .jsonl for every file, or set output_format",
                        paths.iter().filter_map(|p| p.file_name()).collect::<Vec<_>>()
                    )))
                }
            }
        }
    };
    Ok(StepData::Files { paths, format })
}
