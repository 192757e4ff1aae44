//! `assets sql "…"`: query the run store and asset tables.

use std::path::Path;

pub async fn run(root: &Path, query: &str, at: &[String], json: bool) -> anyhow::Result<u8> {
    let mut pinned = std::collections::BTreeMap::new();
    for a in at {
        let parsed = a.rsplit_once('=').and_then(|(k, v)| {
            Some((
                spine_engine::AssetKey::parse(k).ok()?,
                v.parse::<i64>().ok()?,
            ))
        });
        let Some((k, v)) = parsed else {
            return Err(
                spine_engine::EngineError::from(spine_engine::DefinitionErrors(vec![
                    spine_engine::DefinitionError::new(
                        "E0307",
                        format!("--at '{a}' is not KEY=VERSION"),
                    )
                    .hint("e.g. --at marts/orders=3"),
                ]))
                .into(),
            );
        };
        pinned.insert(k, v);
    }
    let engine = super::engine(root, None).await?;
    let batches = spine_engine::query::run_sql_at(&engine, query, &pinned).await?;
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
