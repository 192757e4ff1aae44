//! `assets history KEY [--limit N]`: the asset's Delta commits, newest first.

use spine_engine::AssetKey;
use std::path::Path;

pub async fn run(root: &Path, key: &str, limit: usize, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let key = AssetKey::parse(key)?;
    let result = engine.history(&key, limit).await;
    // Each run as the shortest prefix that names it alone in the store (`assets run PREFIX` works).
    let mut short = std::collections::HashMap::new();
    let mut runs: Vec<String> = Vec::new();
    for c in result.iter().flatten() {
        runs.extend(c.steps.iter().filter_map(|s| s.run_id.clone()));
    }
    runs.sort();
    runs.dedup();
    for run in runs {
        let id = spine_engine::RunId(run.clone());
        let prefix = crate::output::short_run(engine.reader().as_ref(), &id).await;
        short.insert(run, prefix);
    }
    engine.close().await;
    let commits = result?;
    if json {
        crate::output::json(&serde_json::json!(commits))?;
        return Ok(0);
    }
    if commits.is_empty() {
        println!("{key} has no table yet");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = commits
        .iter()
        .map(|c| {
            let when = c
                .timestamp_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into());
            let steps = if c.steps.is_empty() {
                "(another writer)".to_string()
            } else {
                c.steps
                    .iter()
                    .map(|s| s.step_id.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let run = c
                .steps
                .first()
                .and_then(|s| s.run_id.as_ref())
                .and_then(|r| short.get(r).cloned())
                .unwrap_or_else(|| "-".into());
            let rows = c
                .steps
                .iter()
                .filter_map(|s| s.rows)
                .reduce(|a, b| a + b)
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into());
            let published = match c.steps.iter().map(|s| s.published).collect::<Vec<_>>() {
                p if p.is_empty() || p.contains(&None) => "-",
                p if p.iter().all(|x| *x == Some(true)) => "yes",
                _ => "no (held back)",
            };
            vec![
                c.version.to_string(),
                when,
                c.operation.clone().unwrap_or_else(|| "-".into()),
                run,
                steps,
                rows,
                published.to_string(),
            ]
        })
        .collect();
    crate::output::table(
        &[
            "version",
            "committed (UTC)",
            "operation",
            "run",
            "steps",
            "rows",
            "published",
        ],
        &rows,
    );
    Ok(0)
}
