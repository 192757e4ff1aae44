//! `assets optimize KEY [--z-order COL,…]` and `assets vacuum KEY [--retain-hours N] [--force]
//! [--dry-run]`: table maintenance (see `spine_engine::maintenance`).

use spine_engine::AssetKey;
use std::path::Path;

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub async fn optimize(
    root: &Path,
    key: &str,
    z_order: &[String],
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let key = AssetKey::parse(key)?;
    let result = engine.optimize(&key, z_order).await;
    engine.close().await;
    let report = result?;
    if json {
        crate::output::json(&report)?;
        return Ok(0);
    }
    match report.version {
        None => println!(
            "{key}: nothing to compact at version {} (its files are already compacted)",
            report.from_version
        ),
        Some(v) => println!(
            "{key}: version {v} holds the rows of version {} in {} file(s) ({}) instead of {} ({}){}",
            v - 1,
            report.files_added,
            mib(report.bytes_added),
            report.files_removed,
            mib(report.bytes_removed),
            if report.z_order.is_empty() {
                String::new()
            } else {
                format!(", Z-ordered by {}", report.z_order.join(", "))
            }
        ),
    }
    Ok(0)
}

pub async fn vacuum(
    root: &Path,
    key: &str,
    retain_hours: Option<u64>,
    force: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let key = AssetKey::parse(key)?;
    let result = engine.vacuum(&key, retain_hours, force, dry_run).await;
    engine.close().await;
    let report = result?;
    if json {
        crate::output::json(&report)?;
        return Ok(0);
    }
    let kept = report
        .kept_versions
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{key}: {verb} {} file(s) older than {} hours; kept every file of version(s) [{kept}] (read by the published materializations)",
        report.files.len(),
        report.retention_hours
    );
    for f in &report.files {
        println!("  {f}");
    }
    Ok(0)
}
