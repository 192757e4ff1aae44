//! The benchmark ETL as one plain DataFusion program, no orchestration: generate `rows` events, keep
//! the ones with `amount >= 250`, aggregate per-user features. Each step is written to a Parquet file
//! (Snappy, like Spine's Delta data files) and the next step reads it back, as Spine does for results
//! too large to hand over in memory. `bench/peers.py` runs it as the floor for Spine's ETL figure.
//!
//! Usage: `etl-floor <out-dir> <rows>`; prints the three row counts as JSON.

use std::path::Path;

use anyhow::{bail, Context, Result};
use datafusion::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

/// The same three queries as the Spine project `bench/peers.py` generates.
pub fn queries(rows: u64) -> [(&'static str, String); 3] {
    [
        (
            "events",
            format!(
                "SELECT value AS id, (value * 7919) % 100000 AS user_id, \
             CAST((value * 104729) % 99991 AS DOUBLE) / 100.0 AS amount, \
             to_timestamp_seconds(1700000000 + value) AS ts \
             FROM generate_series(0, {})",
                rows.saturating_sub(1)
            ),
        ),
        (
            "filtered",
            "SELECT id, user_id, amount, ts FROM events WHERE amount >= 250.0".to_string(),
        ),
        (
            "user_features",
            "SELECT user_id, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS avg_amount, \
             MAX(amount) AS max_amount, MIN(ts) AS first_ts, MAX(ts) AS last_ts \
             FROM filtered GROUP BY user_id"
                .to_string(),
        ),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, rows] = args.as_slice() else {
        bail!("usage: etl-floor <out-dir> <rows>");
    };
    let rows: u64 = rows
        .parse()
        .with_context(|| format!("rows must be a number, got {rows:?}"))?;
    let out = Path::new(out);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ctx = SessionContext::new();
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("snappy".to_string());
    let mut counts = Vec::new();
    for (name, sql) in queries(rows) {
        let started = std::time::Instant::now();
        let file = out.join(format!("{name}.parquet"));
        let file = file.to_str().context("output path is not UTF-8")?;
        ctx.sql(&sql)
            .await?
            .write_parquet(
                file,
                DataFrameWriteOptions::new().with_single_file_output(true),
                Some(options.clone()),
            )
            .await?;
        ctx.register_parquet(name, file, ParquetReadOptions::default())
            .await?;
        let n = ctx.table(name).await?.count().await?;
        eprintln!("{name}: {n} rows in {:?}", started.elapsed());
        counts.push(format!("\"{name}\": {n}"));
    }
    println!("{{{}}}", counts.join(", "));
    Ok(())
}
