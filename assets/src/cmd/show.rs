//! `assets show KEY`: everything known about one asset on one screen — its definition, status and
//! why, partitions, schema with each column's lineage, checks with their latest outcomes, its last
//! materializations, and the upstream versions its latest one read.

use spine_engine::key::AssetKey;
use spine_engine::{DefinitionError, Engine, EngineError};
use std::path::Path;

/// How many materializations are listed.
const RECENT: i64 = 5;

pub async fn run(root: &Path, key: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let shown = gather(&engine, key).await;
    engine.close().await;
    let shown = shown?;
    if json {
        crate::output::json(&shown)?;
    } else {
        print_text(&shown);
    }
    Ok(0)
}

async fn gather(engine: &Engine, key: &str) -> Result<serde_json::Value, EngineError> {
    let key = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
    let project = engine.project();
    let Some(spec) = project.assets.get(&key) else {
        return Err(
            DefinitionError::new("E0402", format!("no asset '{key}' in this project")).into(),
        );
    };
    let status = engine
        .status(Some(&format!("key:{key}")))
        .await?
        .into_iter()
        .next();
    let store = engine.reader();
    let recent = store.materializations(&key, RECENT).await?;
    let lineage = store.latest_column_lineage().await?;
    let columns = lineage.get(&key);
    // The schema: of the latest materialization, else the declared one.
    let schema: Vec<serde_json::Value> = match recent.first() {
        Some(m) => m.m.schema.as_array().cloned().unwrap_or_default(),
        None => spec
            .declared_schema
            .as_ref()
            .map(|s| {
                s.fields()
                    .iter()
                    .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let schema: Vec<serde_json::Value> = schema
        .into_iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap_or_default().to_string();
            let from: Vec<String> = columns
                .and_then(|cols| cols.iter().find(|c| c.column == name))
                .map(|c| {
                    c.sources
                        .iter()
                        .map(|s| format!("{}.{} ({})", s.asset, s.column, s.how.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({"name": name, "type": f["type"], "from": from})
        })
        .collect();
    let latest_checks = match status.as_ref().and_then(|s| s.latest.as_ref()) {
        Some(m) => store.check_results(m.id).await?,
        None => Vec::new(),
    };
    let checks: Vec<serde_json::Value> = spec
        .checks
        .iter()
        .map(|c| {
            let outcome = latest_checks.iter().find(|r| r.outcome.name == c.name);
            serde_json::json!({
                "name": c.name,
                "severity": c.severity,
                "passed": outcome.map(|o| o.outcome.passed),
                "failing_rows": outcome.map(|o| o.outcome.failing_rows),
            })
        })
        .collect();
    let downstream: Vec<String> = project
        .graph
        .descendants(&key, Some(1))
        .into_iter()
        .filter(|(k, _)| **k != key)
        .map(|(k, _)| k.to_string())
        .collect();
    let read = status
        .as_ref()
        .and_then(|s| s.latest.as_ref())
        .map(|m| {
            m.m.upstream
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "key": u.key, "partition": u.partition, "delta_version": u.delta_version,
                        "materialization_id": u.materialization_id,
                    })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut runs = Vec::new();
    for m in &recent {
        runs.push(serde_json::json!({
            "delta_version": m.m.delta_version,
            "partition": m.m.partition_key,
            "run_id": store.short_run_id(&m.m.run_id).await?,
            "rows": m.m.row_count,
            "published": m.m.published,
            "at": m.created_at,
        }));
    }
    Ok(serde_json::json!({
        "key": key,
        "kind": spec.kind,
        "group": spec.group,
        "description": spec.description,
        "owners": spec.owners,
        "tags": spec.tags,
        "defined_at": spec.source.as_ref().map(|l| l.to_string()),
        "code_version": spec.code_version,
        "upstream": spec.deps,
        "downstream": downstream,
        "partitions": spec.partitions.as_ref().map(|_| status.as_ref().and_then(|s| s.partitions.clone())),
        "state": status.as_ref().map(|s| s.state),
        "why": match status.as_ref().map(|s| &s.freshness) {
            Some(spine_engine::Freshness::Stale(r)) => r.clone(),
            _ => Vec::new(),
        },
        "outdated_upstream": status.as_ref().and_then(|s| s.outdated_upstream.clone()),
        "held_back": status.as_ref().map(|s| s.held_back.clone()).unwrap_or_default(),
        "schema": schema,
        "checks": checks,
        "materializations": runs,
        "read": read,
    }))
}

fn print_text(v: &serde_json::Value) {
    let text = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let list = |k: &str| {
        let items: Vec<String> = v[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    println!(
        "{}  ({}, group {})",
        text("key"),
        text("kind"),
        text("group")
    );
    if let Some(d) = v["description"].as_str() {
        println!("  {d}");
    }
    println!("defined at    {}", text("defined_at"));
    println!("code version  {}", text("code_version"));
    println!("owners        {}", list("owners"));
    println!("tags          {}", list("tags"));
    println!("upstream      {}", list("upstream"));
    println!("downstream    {}", list("downstream"));
    let why = list("why");
    match v["outdated_upstream"].as_str() {
        Some(u) => println!(
            "state         {} (upstream '{u}' is outdated)",
            text("state")
        ),
        None if why != "-" => println!("state         {} — {why}", text("state")),
        None => println!("state         {}", text("state")),
    }
    if let Some(p) = v["partitions"].as_object() {
        println!(
            "partitions    {} total: {} fresh, {} stale, {} missing, {} failed",
            p["total"], p["fresh"], p["stale"], p["missing"], p["failed"]
        );
    }
    for h in v["held_back"].as_array().into_iter().flatten() {
        println!(
            "held back     Delta v{}{} by {}",
            h["delta_version"],
            h["partition"]
                .as_str()
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default(),
            h["failed_checks"]
        );
    }
    let rows = |k: &str, f: &dyn Fn(&serde_json::Value) -> Vec<String>| -> Vec<Vec<String>> {
        v[k].as_array()
            .map(|a| a.iter().map(f).collect())
            .unwrap_or_default()
    };
    let s = |x: &serde_json::Value| match x {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    println!("\nschema");
    crate::output::table(
        &["column", "type", "from"],
        &rows("schema", &|c| {
            let from: Vec<String> = c["from"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            vec![s(&c["name"]), s(&c["type"]), from.join(", ")]
        }),
    );
    if v["checks"].as_array().is_some_and(|c| !c.is_empty()) {
        println!("\nchecks (on the latest materialization)");
        crate::output::table(
            &["check", "severity", "passed", "failing rows"],
            &rows("checks", &|c| {
                vec![
                    s(&c["name"]),
                    s(&c["severity"]),
                    s(&c["passed"]),
                    s(&c["failing_rows"]),
                ]
            }),
        );
    }
    println!("\nmaterializations (latest {RECENT})");
    crate::output::table(
        &[
            "delta version",
            "partition",
            "run",
            "rows",
            "published",
            "at",
        ],
        &rows("materializations", &|m| {
            vec![
                s(&m["delta_version"]),
                s(&m["partition"]),
                s(&m["run_id"]),
                s(&m["rows"]),
                s(&m["published"]),
                s(&m["at"]),
            ]
        }),
    );
    if v["read"].as_array().is_some_and(|r| !r.is_empty()) {
        println!("\nread by the latest materialization");
        crate::output::table(
            &["upstream", "partition", "delta version"],
            &rows("read", &|r| {
                vec![s(&r["key"]), s(&r["partition"]), s(&r["delta_version"])]
            }),
        );
    }
}
