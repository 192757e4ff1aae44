//! Partition commits from two engines (two processes' worth of warehouse state) on one table: each
//! engine remembers the table after its own commits, so the other's commits make its next version
//! taken; it must then commit after them without losing or duplicating a partition's rows.

use arrow::array::Array;
use spine_engine::kinds::KindRegistry;
use spine_engine::partitions::{PartitionSelection, PartitionsDef};
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::RunStatus;
use spine_engine::{AssetKey, Engine, MaterializeRequest, PartitionKey};
use std::path::Path;

async fn engine(dir: &Path) -> Engine {
    engine_of(dir, &["p0", "p1", "p2", "p3"]).await
}

/// An engine over one partitioned asset `events` with these static partitions.
async fn engine_of(dir: &Path, keys: &[&str]) -> Engine {
    let parts = serde_json::json!({ "static": keys });
    let project = Project::builder(ProjectConfig::in_dir(dir).unwrap())
        .asset(
            AssetSpec::sql("events", "SELECT 1 AS n UNION ALL SELECT 2 AS n")
                .unwrap()
                .with_partitions(PartitionsDef::parse(&parts).unwrap()),
        )
        .build()
        .unwrap();
    Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap()
}

async fn run(e: &Engine, keys: &[&str], force: bool) {
    let req = MaterializeRequest {
        partitions: PartitionSelection::Keys(
            keys.iter().map(|k| PartitionKey(k.to_string())).collect(),
        ),
        force,
        ..Default::default()
    };
    let report = e.materialize(req).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
}

/// Rows per partition in the table's latest version, read through DataFusion.
async fn rows_per_partition(e: &Engine) -> Vec<(String, i64)> {
    let ctx = datafusion::prelude::SessionContext::new();
    let key = AssetKey::parse("events").unwrap();
    let (provider, _) = e
        .warehouse()
        .provider(&key, None, &ctx)
        .await
        .unwrap()
        .unwrap();
    ctx.register_table("events", provider).unwrap();
    let batches = ctx
        .sql("SELECT partition_key, COUNT(*) AS n FROM events GROUP BY 1 ORDER BY 1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in batches {
        let b = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
            .map(|c| (c, b.column(1).clone()))
            .unwrap();
        let (keys, counts) = (
            b.0.as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap()
                .clone(),
            b.1.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .clone(),
        );
        for i in 0..keys.len() {
            out.push((keys.value(i).to_string(), counts.value(i)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_version_was_taken_commits_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (engine(dir.path()).await, engine(dir.path()).await);
    run(&a, &["p0", "p1"], false).await; // a creates the table, then remembers version 1
    run(&b, &["p2"], false).await; // b loads version 1 and writes 2
    run(&a, &["p3"], false).await; // a's version 2 is taken: it commits after b
    run(&b, &["p3"], true).await; // b's memory is stale too; p3 is replaced, not doubled
    run(&a, &["p2"], true).await;
    let expected: Vec<(String, i64)> = ["p0", "p1", "p2", "p3"]
        .iter()
        .map(|p| (p.to_string(), 2))
        .collect();
    assert_eq!(rows_per_partition(&a).await, expected);
    let table = a
        .warehouse()
        .open(&AssetKey::parse("events").unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        table.version(),
        Some(5),
        "one commit per partition materialization"
    );
}

/// Partitions of one table that finish side by side share commits (group commit): a run of 64
/// partitions writes far fewer than 64 versions, yet every partition holds its rows once and every
/// step's own commit is found by its `txn` (what recovery relies on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_finishing_together_share_a_commit_and_keep_their_own_txn() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("p{i:02}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let e = engine_of(dir.path(), &keys).await;
    let report = e
        .materialize(MaterializeRequest {
            partitions: PartitionSelection::All,
            concurrency: Some(4),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let rows = rows_per_partition(&e).await;
    assert_eq!(rows.len(), 64);
    assert!(rows.iter().all(|(_, n)| *n == 2), "{rows:?}");
    let key = AssetKey::parse("events").unwrap();
    let table = e.warehouse().open(&key, None).await.unwrap().unwrap();
    let versions = table.version().unwrap() + 1;
    assert!(
        versions <= 40,
        "64 partitions took {versions} commits: partitions finishing together were not grouped"
    );
    let latest = e.store().latest_materializations().await.unwrap();
    let mut grouped = 0;
    for (step, m) in latest.iter().filter(|(s, _)| s.asset == key) {
        let id = step.to_string();
        let (version, info) = e
            .warehouse()
            .find_commit(&key, &id, m.m.seq, m.m.run_id.as_str())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no commit found for {id} seq {}", m.m.seq));
        assert_eq!(version, m.m.delta_version, "{id}");
        assert_eq!(info.step_id, id.as_str(), "{info:?}");
        let same = latest
            .values()
            .filter(|o| o.m.delta_version == version)
            .count();
        grouped += usize::from(same > 1);
    }
    assert!(grouped > 0, "no commit carried two partitions");
}
