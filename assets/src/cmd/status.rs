//! `assets status`: missing / fresh / stale, and why.

use crate::output::short_run;
use spine_engine::Freshness;
use std::collections::HashMap;
use std::path::Path;

pub async fn run(root: &Path, selection: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection).await?;
    let statuses = engine.status(selection).await?;
    if json {
        crate::output::json(&statuses)?;
        return Ok(0);
    }
    let mut shorts: HashMap<&spine_engine::RunId, String> = HashMap::new();
    for m in statuses.iter().filter_map(|s| s.latest.as_ref()) {
        if !shorts.contains_key(&m.m.run_id) {
            let short = short_run(engine.store().as_ref(), &m.m.run_id).await;
            shorts.insert(&m.m.run_id, short);
        }
    }
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let why = match (&s.freshness, &s.outdated_upstream) {
                (Freshness::Missing, _) => "never materialized".to_string(),
                (Freshness::Stale(r), _) => r.join("; "),
                (Freshness::Fresh, Some(up)) => format!(
                    "upstream '{up}' is stale or missing; this is recomputed after it (materialize '+{}')",
                    s.key
                ),
                (Freshness::Fresh, None) => String::new(),
            };
            let (rows, run, at) = match &s.latest {
                Some(m) => (
                    m.m.row_count.to_string(),
                    shorts.get(&m.m.run_id).cloned().unwrap_or_default(),
                    m.created_at.clone(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            // A partitioned asset shows its partitions' states; rows are the latest partition's.
            let state = match &s.partitions {
                Some(c) => format!(
                    "{} ({}/{} fresh)",
                    s.state.replace('_', "-"),
                    c.fresh,
                    c.total
                ),
                None => s.state.replace('_', "-"),
            };
            vec![
                s.key.to_string(),
                state,
                rows,
                run,
                at,
                why,
            ]
        })
        .collect();
    crate::output::table(
        &["asset", "state", "rows", "run", "materialized at", "why"],
        &rows,
    );
    Ok(0)
}
