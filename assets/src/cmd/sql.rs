//! `assets sql "…"`: query the run store and asset tables.

use std::path::Path;

pub async fn run(root: &Path, query: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let batches = spine_engine::query::run_sql(&engine, query).await?;
    if json {
        let mut w = arrow::json::ArrayWriter::new(Vec::new());
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
        let bytes = w.into_inner();
        println!(
            "{}",
            if bytes.is_empty() {
                "[]".into()
            } else {
                String::from_utf8_lossy(&bytes).to_string()
            }
        );
    } else {
        println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
    }
    Ok(0)
}
