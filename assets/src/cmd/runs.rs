//! `assets runs`, `assets run ID`, `assets logs RUN`.

use crate::output::{millis, short_run};
use spine_engine::store::ReadStore;
use std::path::Path;
use std::sync::Arc;

async fn store(root: &Path) -> anyhow::Result<Arc<dyn ReadStore>> {
    let config =
        spine_engine::ProjectConfig::load(root).map_err(spine_engine::EngineError::from)?;
    Ok(spine_engine::store::open_reader(&config.state_url)
        .await
        .map_err(spine_engine::EngineError::from)?)
}

fn elapsed(start: &Option<String>, end: &Option<String>) -> String {
    let parse = |s: &Option<String>| {
        s.as_ref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse(start), parse(end)) {
        (Some(a), Some(b)) => millis((b - a).num_milliseconds().max(0) as u128),
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

/// The run's status, labelled when the store says it is active but its process is gone (a `kill -9`):
/// the next `assets materialize` settles it.
fn status_label(r: &spine_engine::store::RunRecord) -> String {
    if spine_engine::is_interrupted(r, chrono::Utc::now().timestamp_millis()) {
        format!("{} (process died)", r.status)
    } else {
        r.status.to_string()
    }
}

/// A run as JSON: a run whose process died while the store still says it is active shows
/// `"status": "interrupted"` (its stored status under `stored_status`) until it is settled.
fn run_json(r: &spine_engine::store::RunRecord) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(r)?;
    if spine_engine::is_interrupted(r, chrono::Utc::now().timestamp_millis()) {
        v["stored_status"] = v["status"].clone();
        v["status"] = "interrupted".into();
    }
    Ok(v)
}

pub async fn list(root: &Path, limit: i64, json: bool) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let runs = store.list_runs(limit).await?;
    if json {
        let runs = runs
            .iter()
            .map(run_json)
            .collect::<anyhow::Result<Vec<_>>>()?;
        crate::output::json(&runs)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.to_string(),
                status_label(r),
                r.created_at.clone(),
                elapsed(&r.started_at, &r.finished_at),
                r.launched_by.clone().unwrap_or_else(|| "-".into()),
                r.tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                r.selection.clone().unwrap_or_else(|| "*".into()),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::table(
        &[
            "run",
            "status",
            "created",
            "duration",
            "launched by",
            "tags",
            "selection",
            "error",
        ],
        &rows,
    );
    Ok(0)
}

pub async fn show(root: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let run = store.get_run(id).await?;
    let steps = store.steps(&run.run_id).await?;
    let checks = store.run_check_results(&run.run_id).await?;
    if json {
        crate::output::json(
            &serde_json::json!({"run": run_json(&run)?, "steps": steps, "checks": checks}),
        )?;
        return Ok(0);
    }
    println!("run       {}", run.run_id);
    println!("status    {}", status_label(&run));
    println!(
        "selection {}",
        run.selection.clone().unwrap_or_else(|| "*".into())
    );
    println!("created   {}", run.created_at);
    if let Some(by) = &run.launched_by {
        println!("launched  by {by}");
    }
    if !run.tags.is_empty() {
        let tags: Vec<String> = run.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("tags      {}", tags.join(" "));
    }
    println!("duration  {}", elapsed(&run.started_at, &run.finished_at));
    if let Some(e) = &run.error {
        println!("error     {e}");
    }
    println!();
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                s.step_id.clone(),
                s.status.to_string(),
                s.attempt.to_string(),
                elapsed(&s.started_at, &s.finished_at),
                s.error
                    .clone()
                    .or(s.reason.clone())
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    crate::output::table(
        &["step", "status", "attempts", "duration", "error / reason"],
        &rows,
    );
    if !checks.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                let o = &c.outcome;
                vec![
                    c.step_id.clone(),
                    o.name.clone(),
                    o.severity.as_str().to_string(),
                    if o.passed { "passed" } else { "failed" }.to_string(),
                    o.failing_rows.to_string(),
                    o.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        crate::output::table(
            &[
                "step",
                "check",
                "severity",
                "result",
                "failing rows",
                "error",
            ],
            &rows,
        );
    }
    // The table shows each error's first line; the whole message, with its causes, follows.
    for s in steps.iter().filter(|s| s.error.is_some()) {
        let error = s.error.as_deref().unwrap_or_default();
        println!("\n{} failed (attempt {}):", s.step_id, s.attempt);
        for line in error.lines() {
            println!("    {line}");
        }
    }
    Ok(0)
}

/// `assets logs RUN [--step KEY] [--follow]`.
pub async fn logs(
    root: &Path,
    id: &str,
    step: Option<&str>,
    follow: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let run = store.get_run(id).await?;
    // A partitioned asset's key names all its partition steps (`--step marts/orders_by_day`).
    let mut partition_steps: Option<Vec<String>> = None;
    if let Some(step) = step {
        let steps = store.steps(&run.run_id).await?;
        let of_asset: Vec<String> = steps
            .iter()
            .filter(|s| s.partition_key.is_some() && s.asset_key.as_str() == step)
            .map(|s| s.step_id.clone())
            .collect();
        if !of_asset.is_empty() {
            partition_steps = Some(of_asset);
        } else if !steps.iter().any(|s| s.step_id == step) {
            let known: Vec<&str> = steps.iter().map(|s| s.step_id.as_str()).collect();
            let mut e = spine_engine::DefinitionError::new(
                "E0404",
                format!("run {} has no step '{step}'", run.run_id),
            );
            if let Some(c) = spine_engine::project::closest(step, known.iter().copied()) {
                e = e.hint(format!("did you mean '{c}'?"));
            }
            return Err(spine_engine::EngineError::from(e).into());
        }
    }
    let wanted = |e: &spine_engine::store::EventRecord| match (&partition_steps, step) {
        (Some(steps), _) => e.event.step_id.as_ref().is_some_and(|s| steps.contains(s)),
        (None, Some(step)) => e.event.step_id.as_deref() == Some(step),
        (None, None) => true,
    };
    let short = short_run(store.as_ref(), &run.run_id).await;
    if !follow {
        return print_all(store.as_ref(), &run.run_id, &wanted, &short, json).await;
    }
    let mut after = 0;
    loop {
        let events = store.events(&run.run_id, after).await?;
        after = events.last().map(|e| e.id).unwrap_or(after);
        for e in events.into_iter().filter(|e| wanted(e)) {
            print_event(&e, &short, json)?;
        }
        let now = store.get_run(run.run_id.as_str()).await?;
        if spine_engine::is_interrupted(&now, chrono::Utc::now().timestamp_millis()) {
            eprintln!(
                "run {short} is {} but its executor ({} on {}) is gone; the next `assets materialize` settles it",
                now.status,
                now.pid.unwrap_or(0),
                now.host.clone().unwrap_or_default()
            );
            break;
        }
        if !now.status.is_active() {
            // Events written together with the final status are already in; one last read.
            for e in store.events(&run.run_id, after).await? {
                if wanted(&e) {
                    print_event(&e, &short, json)?;
                }
            }
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(0)
}

/// Events read (and printed) per page by `logs`: a run's log is streamed, never loaded whole.
const LOG_PAGE: i64 = 5000;

/// Prints every `wanted` event of a run, page by page; `json` prints one JSON array.
async fn print_all(
    store: &dyn spine_engine::store::ReadStore,
    run_id: &spine_engine::key::RunId,
    wanted: &(dyn Fn(&spine_engine::store::EventRecord) -> bool + Sync),
    short: &str,
    json: bool,
) -> anyhow::Result<u8> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut after = 0;
    let mut first = true;
    if json {
        write!(out, "[")?;
    }
    loop {
        let page = store.events_page(run_id, after, LOG_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let full = page.len() as i64 == LOG_PAGE;
        for e in page.iter().filter(|e| wanted(e)) {
            if json {
                let sep = if first { "\n  " } else { ",\n  " };
                write!(out, "{sep}{}", serde_json::to_string(e)?)?;
                first = false;
            } else {
                writeln!(out, "{}", event_line(e, short))?;
            }
        }
        if !full {
            break;
        }
    }
    if json {
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(0)
}

/// One event: a text line, or (with `--follow --json`) one JSON object per line.
fn print_event(
    e: &spine_engine::store::EventRecord,
    short: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(e)?);
    } else {
        println!("{}", event_line(e, short));
    }
    Ok(())
}

/// An event as a text line: time, level, run, step, message.
fn event_line(e: &spine_engine::store::EventRecord, short: &str) -> String {
    let step = e
        .event
        .step_id
        .clone()
        .map(|s| format!(" [{s}]"))
        .unwrap_or_default();
    format!(
        "{} {:5} {}{} {}",
        e.ts,
        e.event.level.to_uppercase(),
        short,
        step,
        e.event.message
    )
}

/// A `--payload JSON` option's value (E0409 when it is not JSON).
pub(super) fn payload(
    p: Option<&str>,
) -> Result<Option<serde_json::Value>, spine_engine::DefinitionError> {
    p.map(|p| {
        serde_json::from_str(p).map_err(|e| {
            spine_engine::DefinitionError::new("E0409", format!("--payload is not JSON: {e}"))
                .hint("quote it for the shell, e.g. --payload '{\"approved\": true}'")
        })
    })
    .transpose()
}

/// `assets signal RUN STEP [--payload JSON]`: resumes a parked step with a payload on the next
/// `assets execute RUN`.
pub async fn signal(
    root: &Path,
    run: &str,
    step: &str,
    payload: Option<&str>,
    json: bool,
) -> anyhow::Result<u8> {
    let payload = self::payload(payload)?.unwrap_or_else(|| serde_json::json!({}));
    let engine = super::engine(root, None).await?;
    let run_id = engine.reader().get_run(run).await?.run_id;
    let result = engine.signal(&run_id, step, payload).await;
    let short = crate::output::short_run(engine.reader().as_ref(), &run_id).await;
    engine.close().await;
    result?;
    if json {
        crate::output::json(
            &serde_json::json!({"run_id": run_id, "step": step, "signalled": true}),
        )?;
    } else {
        println!("signalled {step} of run {short}; resume it with: assets execute {short}");
    }
    Ok(0)
}
