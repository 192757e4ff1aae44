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
            let short = short_run(engine.reader().as_ref(), &m.m.run_id).await;
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
                    // A partitioned asset's rows are its table's: every partition's.
                    s.partitions
                        .as_ref()
                        .map_or(m.m.row_count, |c| c.rows)
                        .to_string(),
                    shorts.get(&m.m.run_id).cloned().unwrap_or_default(),
                    m.created_at.clone(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            // A partitioned asset shows its partitions' states.
            let state = match &s.partitions {
                Some(c) => format!(
                    "{} ({}/{} fresh{})",
                    s.state.replace('_', "-"),
                    c.fresh,
                    c.total,
                    match c.failed {
                        0 => String::new(),
                        n => format!(", {n} failed"),
                    }
                ),
                None => s.state.replace('_', "-"),
            };
            // Versions a failed check holds back, after the freshness reason.
            let held: Vec<String> = s
                .held_back
                .iter()
                .map(|h| {
                    // A source read in place: an observation, no Delta version.
                    if h.delta_version < 0 {
                        return format!(
                            "an observation held back by failed checks ({}): assets publish {} --reason …",
                            h.failed_checks.join(", "),
                            s.key,
                        );
                    }
                    format!(
                        "version {}{} held back by failed checks ({}): assets publish {} --version {}{} --reason …",
                        h.delta_version,
                        h.partition.as_ref().map(|p| format!(" [{p}]")).unwrap_or_default(),
                        h.failed_checks.join(", "),
                        s.key,
                        h.delta_version,
                        h.partition.as_ref().map(|p| format!(" --partition {p}")).unwrap_or_default(),
                    )
                })
                .collect();
            let why = [why]
                .into_iter()
                .chain(held)
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
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

/// `assets partitions ASSET`: ranges of partitions in one state, e.g.
/// `2026-01-01..2026-03-31  fresh  90`.
pub async fn partitions(root: &Path, key: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let ranges = engine.partition_ranges(key).await;
    engine.close().await;
    let ranges = ranges?;
    if json {
        crate::output::json(&ranges)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = ranges
        .iter()
        .map(|r| {
            vec![
                if r.count == 1 {
                    r.first.to_string()
                } else {
                    format!("{}..{}", r.first, r.last)
                },
                r.state.to_string(),
                r.count.to_string(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::table(&["partitions", "state", "count", "why"], &rows);
    let total: usize = ranges.iter().map(|r| r.count).sum();
    let fresh: usize = ranges
        .iter()
        .filter(|r| r.state == "fresh")
        .map(|r| r.count)
        .sum();
    println!("{key}: {fresh} of {total} partition(s) fresh");
    Ok(0)
}

/// `assets partitions add NAME KEY…`.
pub async fn add_partitions(
    root: &Path,
    name: &str,
    keys: &[String],
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let added = engine.add_dynamic_partitions(name, keys).await?;
    engine.close().await;
    if json {
        crate::output::json(
            &serde_json::json!({"name": name, "added": added, "given": keys.len()}),
        )?;
    } else {
        println!(
            "dynamic partitions '{name}': {added} added, {} already there",
            keys.len() - added
        );
    }
    Ok(0)
}
