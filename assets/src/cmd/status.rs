//! `assets status`: missing / fresh / stale, and why.

use crate::output::short;
use spine_engine::staleness::Freshness;
use std::path::Path;

pub async fn run(root: &Path, selection: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection).await?;
    let statuses = engine.status(selection).await?;
    if json {
        crate::output::json(&statuses)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| {
            let mut why = match &s.freshness {
                Freshness::Missing => "never materialized".to_string(),
                Freshness::Fresh => String::new(),
                Freshness::Stale(r) => r.join("; "),
            };
            if s.upstream_outdated && s.freshness == Freshness::Fresh {
                why = "an upstream is stale or missing".into();
            }
            let (rows, run, at) = match &s.latest {
                Some(m) => (
                    m.m.row_count.to_string(),
                    short(m.m.run_id.as_str()).to_string(),
                    m.created_at.clone(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            vec![
                s.key.to_string(),
                s.freshness.label().to_string(),
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
