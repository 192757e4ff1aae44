//! `command`: runs any program and commits what it writes.
//!
//! The program receives its context in environment variables (documented in docs/guide/command-assets.md):
//! `SPINE_RUN_ID`, `SPINE_STEP_ID`, `SPINE_ASSET_KEY`, `SPINE_PARTITION_KEY`, `SPINE_ATTEMPT`,
//! `SPINE_PROJECT_DIR`, `SPINE_OUTPUT_DIR` (where to write `*.parquet`, `*.csv` or `*.jsonl` files),
//! `SPINE_UPSTREAM_<KEY>` (each upstream's Delta table location), `SPINE_INPUT_<KEY>` (an export of each
//! upstream when `input_format` is set) and `SPINE_UPSTREAMS` (all of it as JSON). Each stdout line that
//! is a JSON object with a `type` (`log`, `metadata`, `check`) is recorded as such; other lines are logs.

use datafusion::dataframe::DataFrameWriteOptions;
use futures::future::BoxFuture;
use spine_engine::kinds::{AssetKind, CheckResult, StepContext, StepData, StepError, StepOutput};
use spine_engine::project::AssetBody;
use spine_schemas::events::{CommandMessage, EventKind};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The `command` kind.
pub struct CommandKind;

impl AssetKind for CommandKind {
    fn name(&self) -> &'static str {
        "command"
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(run_command(ctx))
    }
}

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
        .map_err(|e| StepError(format!("cannot read upstream '{key}': {e}")))?;
    let opts = DataFrameWriteOptions::new().with_single_file_output(true);
    let p = path.display().to_string();
    let res = match format {
        "csv" => df.write_csv(&p, opts, None).await,
        "jsonl" => df.write_json(&p, opts, None).await,
        _ => df.write_parquet(&p, opts, None).await,
    };
    res.map_err(|e| StepError(format!("cannot export upstream '{key}' as {format}: {e}")))?;
    Ok(path)
}

async fn run_command(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let AssetBody::Command {
        argv,
        env,
        cwd,
        output_format,
        input_format,
    } = &ctx.spec.body
    else {
        return Err(StepError::msg(
            "internal: command kind got a non-command body",
        ));
    };
    let out_dir = ctx.scratch.join("output");
    let in_dir = ctx.scratch.join("inputs");
    for d in [&out_dir, &in_dir] {
        std::fs::create_dir_all(d)
            .map_err(|e| StepError(format!("cannot create {}: {e}", d.display())))?;
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
        .kill_on_drop(true)
        .env("SPINE_RUN_ID", ctx.run_id.as_str())
        .env("SPINE_STEP_ID", &ctx.step_id)
        .env("SPINE_ASSET_KEY", ctx.spec.key.as_str())
        .env(
            "SPINE_PARTITION_KEY",
            ctx.partition.clone().unwrap_or_default(),
        )
        .env("SPINE_ATTEMPT", ctx.attempt.to_string())
        .env("SPINE_PROJECT_DIR", &ctx.project_root)
        .env("SPINE_OUTPUT_DIR", &out_dir);
    let mut upstreams = serde_json::Map::new();
    for u in &ctx.upstream {
        let loc = location(&u.table_url);
        cmd.env(format!("SPINE_UPSTREAM_{}", u.key.env_suffix()), &loc);
        let mut entry = serde_json::json!({"table": loc, "delta_version": u.delta_version});
        if let Some(f) = input_format {
            let p = export_input(ctx, &u.key, f, &in_dir).await?;
            cmd.env(format!("SPINE_INPUT_{}", u.key.env_suffix()), &p);
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
        StepError(format!("cannot start '{}': {e} (is it installed and on PATH? relative paths resolve against {})", argv[0], cwd.display()))
    })?;
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
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            events.log("warn", &line).await;
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail
    });
    let mut output = StepOutput::data(StepData::Batches(Vec::new()));
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| StepError(format!("reading stdout: {e}")))?
    {
        handle_line(ctx, &line, &mut output).await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| StepError(format!("waiting for the command: {e}")))?;
    let tail = stderr_task.await.unwrap_or_default();
    if !status.success() {
        let code = status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "a signal".into());
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.into_iter().collect::<Vec<_>>().join("\n"))
        };
        return Err(StepError(format!(
            "command {:?} exited with {code}{detail}",
            argv
        )));
    }
    output.data = collect_outputs(&out_dir, output_format.as_deref())?;
    Ok(output)
}

async fn handle_line(ctx: &StepContext, line: &str, output: &mut StepOutput) {
    let trimmed = line.trim();
    if !(trimmed.starts_with('{') && trimmed.contains("\"type\"")) {
        ctx.events.log("info", line).await;
        return;
    }
    match serde_json::from_str::<CommandMessage>(trimmed) {
        Ok(CommandMessage::Log { level, message }) => ctx.events.log(&level, &message).await,
        Ok(CommandMessage::Metadata { data }) => {
            ctx.events
                .emit(
                    EventKind::Metadata,
                    "info",
                    "metadata reported",
                    Some(serde_json::Value::Object(data.clone())),
                )
                .await;
            output.metadata.extend(data);
        }
        Ok(CommandMessage::Check {
            name,
            passed,
            severity,
            message,
        }) => {
            output.checks.push(CheckResult {
                name,
                passed,
                severity,
                message,
            });
        }
        Err(e) => {
            ctx.events
                .log(
                    "warn",
                    &format!("unrecognised protocol message ({e}): {line}"),
                )
                .await
        }
    }
}

/// Lists the files a program wrote and works out their format.
fn collect_outputs(dir: &Path, declared: Option<&str>) -> Result<StepData, StepError> {
    let mut paths = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StepError(format!("cannot list {}: {e}", dir.display())))?;
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
        return Err(StepError(format!(
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
                    return Err(StepError(format!(
                        "cannot tell the output format from {:?}; use one of .parquet, .csv, .jsonl for every file, or set output_format",
                        paths.iter().filter_map(|p| p.file_name()).collect::<Vec<_>>()
                    )))
                }
            }
        }
    };
    Ok(StepData::Files { paths, format })
}
