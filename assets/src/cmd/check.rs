//! `assets check`: validate definitions and plan every SQL asset.

use spine_engine::check::check_sql;
use spine_engine::loader::load_project;
use spine_engine::warehouse::Warehouse;
use spine_engine::{DefinitionErrors, EngineError};
use std::path::Path;

pub async fn run(root: &Path, json: bool) -> anyhow::Result<u8> {
    let kinds = crate::cmd::kinds();
    let project = load_project(root, &kinds).map_err(EngineError::from)?;
    // The same warehouse the engine opens (without the run store: `check` records nothing).
    let (warehouse, warning) =
        Warehouse::for_project(&project.config).map_err(EngineError::from)?;
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    let report = check_sql(&project, &warehouse, &kinds).await;
    if !report.errors.is_empty() {
        return Err(EngineError::from(DefinitionErrors(report.errors)).into());
    }
    if json {
        crate::output::json(&serde_json::json!({
            "ok": true, "assets": project.assets.len(), "sql_planned": report.planned,
            "unplanned": report.unplanned.iter().map(|(k, why)| serde_json::json!({"key": k, "why": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        let skipped = report.unplanned.len();
        let why = if skipped == 0 {
            String::new()
        } else {
            format!(
                "; {skipped} not planned because an upstream's schema is unknown until it is materialized \
                 (e.g. a command asset without `schema:`): declare it, or run `assets materialize` once and check again"
            )
        };
        println!(
            "ok: {} assets, {} of {} SQL queries planned{why}",
            project.assets.len(),
            report.planned,
            report.planned + skipped
        );
        for (k, why) in &report.unplanned {
            println!("  note: {k} not planned: {why}");
        }
        for a in project.assets.values() {
            for d in &a.unread_deps {
                println!("  note: {} declares upstream '{d}' that its query does not read (kept as an ordering dependency)", a.key);
            }
        }
    }
    Ok(0)
}
