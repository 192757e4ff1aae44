//! The benchmark ETL as one plain DataFusion program, no orchestration: generate `rows` events, keep
//! the ones with `amount >= 250`, aggregate per-user features. Each step is written to a Parquet file
//! (zstd level 1, like Spine's Delta data files) and the next step reads it back, as Spine does for
//! results too large to hand over in memory. `bench/peers.py` runs it as the floor for Spine's ETL
//! figure.
//!
//! Usage: `etl-floor <out-dir> <rows>`; prints the three row counts as JSON.
//!
//! `etl-floor write <dir | s3://bucket/prefix> <rows>` writes the benchmark's events (the first
//! query) as one Parquet file and `etl-floor read <file | s3://…/file>` scans one (count, sum, max,
//! min), each printing `{"ms", "rows", "bytes"}`: the plain-DataFusion baseline of
//! `bench/throughput.sh`. S3 settings come from `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_ALLOW_HTTP`.

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
    match args.get(1).map(String::as_str) {
        Some("write") if args.len() == 4 => return write(&args[2], &args[3]).await,
        Some("read") if args.len() == 3 => return read(&args[2]).await,
        _ => {}
    }
    let [_, out, rows] = args.as_slice() else {
        bail!("usage: etl-floor <out-dir> <rows> | write <dir|s3://…> <rows> | read <file|s3://…>");
    };
    let rows: u64 = rows
        .parse()
        .with_context(|| format!("rows must be a number, got {rows:?}"))?;
    let out = Path::new(out);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ctx = SessionContext::new();
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("zstd(1)".to_string());
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

/// A session that reaches `url`'s S3 bucket, if it names one.
fn session_for(url: &str) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    if let Some(rest) = url.strip_prefix("s3://") {
        let bucket = rest
            .split('/')
            .next()
            .context("s3:// URL without a bucket")?;
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(env("AWS_ENDPOINT_URL"))
            .with_region(env("AWS_REGION"))
            .with_access_key_id(env("AWS_ACCESS_KEY_ID"))
            .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY"))
            .with_allow_http(env("AWS_ALLOW_HTTP") == "true")
            .build()?;
        let base = url::Url::parse(&format!("s3://{bucket}"))?;
        ctx.register_object_store(&base, std::sync::Arc::new(store));
    }
    Ok(ctx)
}

/// `write`: the events query as one zstd Parquet file under `out`.
async fn write(out: &str, rows: &str) -> Result<()> {
    let rows: u64 = rows
        .parse()
        .with_context(|| format!("rows must be a number, got {rows:?}"))?;
    let ctx = session_for(out)?;
    let file = format!("{}/events.parquet", out.trim_end_matches('/'));
    if !out.starts_with("s3://") {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {out}"))?;
    }
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("zstd(1)".to_string());
    let started = std::time::Instant::now();
    let [(_, sql), ..] = queries(rows);
    let written = ctx
        .sql(&sql)
        .await?
        .write_parquet(
            &file,
            DataFrameWriteOptions::new().with_single_file_output(true),
            Some(options),
        )
        .await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let n: u64 = written
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
                .map(|a| a.value(0))
        })
        .sum();
    let bytes = size(&ctx, &file).await?;
    println!("{{\"ms\": {ms:.1}, \"rows\": {n}, \"bytes\": {bytes}}}");
    Ok(())
}

/// `read`: a full scan of one Parquet file.
async fn read(file: &str) -> Result<()> {
    let ctx = session_for(file)?;
    let started = std::time::Instant::now();
    ctx.register_parquet("events", file, ParquetReadOptions::default())
        .await?;
    let out = ctx
        .sql("SELECT COUNT(*) AS n, SUM(amount) AS s, MAX(ts) AS t, MIN(user_id) AS u FROM events")
        .await?
        .collect()
        .await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let n = out
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    let bytes = size(&ctx, file).await?;
    println!("{{\"ms\": {ms:.1}, \"rows\": {n}, \"bytes\": {bytes}}}");
    Ok(())
}

/// The size of `file` in bytes, through the session's object store.
async fn size(ctx: &SessionContext, file: &str) -> Result<u64> {
    use object_store::ObjectStoreExt;
    if !file.starts_with("s3://") {
        return Ok(std::fs::metadata(file)?.len());
    }
    let url = url::Url::parse(file)?;
    let bucket = datafusion::execution::object_store::ObjectStoreUrl::parse(format!(
        "s3://{}",
        url.host_str().unwrap_or_default()
    ))?;
    let store = ctx.runtime_env().object_store(bucket)?;
    let path = object_store::path::Path::from(url.path().trim_start_matches('/'));
    Ok(store.head(&path).await?.size)
}
