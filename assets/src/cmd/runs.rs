//! `assets runs`, `assets run ID`, `assets logs RUN`.

use crate::output::{millis, short};
use spine_engine::store::RunStore;
use std::path::Path;
use std::sync::Arc;

async fn store(root: &Path) -> anyhow::Result<Arc<dyn RunStore>> {
    let config =
        spine_engine::ProjectConfig::load(root).map_err(spine_engine::EngineError::from)?;
    Ok(spine_engine::store::open_store(&config.state_url)
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

pub async fn list(root: &Path, limit: i64, json: bool) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let runs = store.list_runs(limit).await?;
    if json {
        crate::output::json(&runs)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.to_string(),
                r.status.to_string(),
                r.created_at.clone(),
                elapsed(&r.started_at, &r.finished_at),
                r.selection.clone().unwrap_or_else(|| "*".into()),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::table(
        &["run", "status", "created", "duration", "selection", "error"],
        &rows,
    );
    Ok(0)
}

pub async fn show(root: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let run = store.get_run(id).await?;
    let steps = store.steps(&run.run_id).await?;
    if json {
        crate::output::json(&serde_json::json!({"run": run, "steps": steps}))?;
        return Ok(0);
    }
    println!("run       {}", run.run_id);
    println!("status    {}", run.status);
    println!(
        "selection {}",
        run.selection.clone().unwrap_or_else(|| "*".into())
    );
    println!("created   {}", run.created_at);
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
    Ok(0)
}

pub async fn logs(root: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let store = store(root).await?;
    let run = store.get_run(id).await?;
    let events = store.events(&run.run_id, 0).await?;
    if json {
        crate::output::json(&events)?;
        return Ok(0);
    }
    for e in events {
        let step = e
            .event
            .step_id
            .clone()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        println!(
            "{} {:5} {}{} {}",
            e.ts,
            e.event.level.to_uppercase(),
            short(run.run_id.as_str()),
            step,
            e.event.message
        );
    }
    Ok(0)
}
