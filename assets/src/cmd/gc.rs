//! `assets gc --older-than 30d [--dry-run]`: prunes the run store's records of old runs, keeping what
//! staleness, lineage, `reproduce`, failed partitions and schedule cursors read (see
//! `spine_engine::store::retention`).

use std::path::Path;
use std::time::Duration;

/// `--older-than`: a duration such as `30d` or `12h`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    spine_engine::duration::parse_duration(s)
}

pub async fn run(
    root: &Path,
    older_than: Duration,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let age = chrono::Duration::from_std(older_than)?;
    let before = (chrono::Utc::now() - age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let result = engine.prune_records(&before, dry_run).await;
    engine.close().await;
    let report = result?;
    if json {
        crate::output::json(&serde_json::json!({
            "before": before,
            "dry_run": dry_run,
            "pruned": report,
        }))?;
        return Ok(0);
    }
    println!(
        "{} {} event(s), {} step(s), {} run(s), {} materialization(s), {} tick(s) and {} agent checkpoint(s) from before {before}{}",
        if dry_run { "would prune" } else { "pruned" },
        report.events,
        report.steps,
        report.runs,
        report.materializations,
        report.ticks,
        report.checkpoints,
        if dry_run { " (dry run: nothing changed)" } else { "" },
    );
    Ok(0)
}
