//! `assets list`: the selected assets with kind, group, deps.

use spine_engine::loader::load_project;
use spine_engine::selection::select;
use spine_engine::EngineError;
use std::path::Path;

pub async fn run(root: &Path, selection: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let project = load_project(root, &crate::cmd::kinds()).map_err(EngineError::from)?;
    let selected = select(&project, selection).map_err(EngineError::from)?;
    let order = project.graph.topological_order().unwrap_or_default();
    let assets: Vec<_> = order
        .into_iter()
        .filter(|k| selected.contains(*k))
        .map(|k| &project.assets[k])
        .collect();
    if json {
        let v: Vec<_> = assets
            .iter()
            .map(|a| serde_json::json!({
                "key": a.key, "kind": a.kind, "group": a.group, "deps": a.deps, "tags": a.tags, "owners": a.owners,
                "description": a.description, "code_version": a.code_version,
                "source": a.source.as_ref().map(|l| l.to_string()),
            }))
            .collect();
        crate::output::json(&v)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = assets
        .iter()
        .map(|a| {
            vec![
                a.key.to_string(),
                a.kind.clone(),
                a.group.clone(),
                a.deps
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    crate::output::table(&["asset", "kind", "group", "upstream"], &rows);
    if assets.is_empty() {
        eprintln!("the selection matched no assets");
    }
    Ok(0)
}
