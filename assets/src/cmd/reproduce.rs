//! `assets reproduce KEY [--run ID | --version N] [--partition P]`: recompute a past materialization
//! with its upstreams pinned (see `spine_engine::Engine::reproduce`); exit 0 when identical, 1 when not.

use spine_engine::{AssetKey, PartitionKey, Target};
use std::path::Path;

pub async fn run(
    root: &Path,
    key: &str,
    run: Option<String>,
    version: Option<i64>,
    partition: Option<String>,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let key = AssetKey::parse(key)?;
    let target = match (run, version) {
        (Some(r), _) => Target::Run(r),
        (None, Some(v)) => Target::Version(v),
        (None, None) => Target::Latest,
    };
    let partition = partition.map(PartitionKey);
    let result = engine.reproduce(&key, partition.as_ref(), &target).await;
    let run = match &result {
        Ok(r) => crate::output::short_run(engine.reader().as_ref(), &r.run_id).await,
        Err(_) => String::new(),
    };
    engine.close().await;
    let r = result?;
    let code = if r.identical { 0 } else { 1 };
    if json {
        crate::output::json(&r)?;
        return Ok(code);
    }
    let of = r
        .partition
        .as_ref()
        .map(|p| format!("[{p}]"))
        .unwrap_or_default();
    let reads = r
        .upstream
        .iter()
        .map(|u| {
            let part = u
                .partition
                .as_ref()
                .map(|p| format!("[{p}]"))
                .unwrap_or_default();
            match u.delta_version {
                Some(v) => format!("{}{part}@{v}", u.key),
                None => format!("{}{part} (observed)", u.key),
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{key}{of}: materialization {} (run {}, Delta version {}) recomputed reading {}",
        r.materialization_id,
        run,
        r.delta_version,
        if reads.is_empty() {
            "no upstream".to_string()
        } else {
            reads
        }
    );
    if r.identical {
        println!(
            "identical: {} rows, data version {}",
            r.rows, r.data_version
        );
        return Ok(code);
    }
    println!(
        "DIFFERENT: data version {} recorded, {} now; {} rows recorded, {} now",
        r.recorded_data_version, r.data_version, r.recorded_rows, r.rows
    );
    if r.recorded_code_version != r.code_version {
        println!(
            "  the code changed since: code version {} then, {} now",
            r.recorded_code_version, r.code_version
        );
    }
    if let Some(d) = &r.diff {
        for c in &d.columns_added {
            println!("  column {c}: only in the reproduction");
        }
        for c in &d.columns_removed {
            println!("  column {c}: only in the recorded rows");
        }
        for (c, from, to) in &d.columns_retyped {
            println!("  column {c}: {from} recorded, {to} now");
        }
        println!(
            "  rows: {} recorded rows not reproduced, {} new ones",
            d.rows_only_recorded, d.rows_only_reproduced
        );
        for (c, n) in &d.values_differing {
            println!("  column {c}: {n} recorded value(s) not reproduced");
        }
    }
    println!("the recomputed table: {}", r.scratch_table);
    Ok(code)
}
