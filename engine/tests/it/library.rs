//! The engine as a library: assets registered in code (a `rust` asset and a `sql` asset reading it),
//! materialized, fresh on re-run, and readable back.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::{RunStatus, StepStatus};
use spine_engine::{Engine, MaterializeRequest};
use std::sync::Arc;

fn numbers(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(1..=n))]).unwrap()
}

#[tokio::test]
async fn rust_and_sql_assets_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProjectConfig::in_dir(dir.path()).unwrap();
    let project = Project::builder(config)
        .asset(
            AssetSpec::rust("numbers", &[], "v1", |_ctx| async { Ok(vec![numbers(10)]) }).unwrap(),
        )
        .asset(
            AssetSpec::sql(
                "stats/sum",
                "SELECT SUM(n) AS total, COUNT(*) AS c FROM numbers",
            )
            .unwrap(),
        )
        .asset(
            AssetSpec::rust("stats/doubled", &["numbers"], "v1", |ctx| async move {
                let df = ctx
                    .session
                    .sql("SELECT n * 2 AS n2 FROM \"numbers\"")
                    .await?;
                Ok(df.collect().await?)
            })
            .unwrap(),
        )
        .build()
        .unwrap();
    let engine = Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap();
    let report = engine
        .materialize(MaterializeRequest::default())
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.count(StepStatus::Succeeded), 3);
    let again = engine
        .materialize(MaterializeRequest::default())
        .await
        .unwrap();
    assert_eq!(again.count(StepStatus::UpToDate), 3);

    let batches = spine_engine::query::run_sql(&engine, "SELECT total, c FROM stats.sum")
        .await
        .unwrap();
    let total = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(total, 55);
    let doubled = spine_engine::query::run_sql(&engine, "SELECT SUM(n2) AS s FROM stats.doubled")
        .await
        .unwrap();
    assert_eq!(
        doubled[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0),
        110
    );
}

#[tokio::test]
async fn a_failing_rust_asset_fails_the_run_and_skips_downstream() {
    let dir = tempfile::tempdir().unwrap();
    let project = Project::builder(ProjectConfig::in_dir(dir.path()).unwrap())
        .asset(
            AssetSpec::rust("broken", &[], "v1", |_| async {
                Err("source unavailable".into())
            })
            .unwrap(),
        )
        .asset(AssetSpec::sql("downstream", "SELECT * FROM broken").unwrap())
        .build()
        .unwrap();
    let engine = Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap();
    let report = engine
        .materialize(MaterializeRequest::default())
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert!(report.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("source unavailable"));
    assert_eq!(report.steps[1].status, StepStatus::Skipped);
}

/// Every time the engine writes comes from its clock (issue 28, item 4): the data files' modification
/// times in a table's log, whole and partitioned, are the engine's (manual) clock's, not the machine's.
#[tokio::test]
async fn the_delta_log_takes_its_times_from_the_engines_clock() {
    use chrono::TimeZone;
    let dir = tempfile::tempdir().unwrap();
    let config = ProjectConfig::in_dir(dir.path()).unwrap();
    let daily =
        spine_engine::partitions::PartitionsDef::parse(&serde_json::json!({"static": ["a", "b"]}))
            .unwrap();
    let project = Project::builder(config)
        .asset(AssetSpec::sql("whole", "SELECT 1 AS x").unwrap())
        .asset(
            AssetSpec::sql("parts", "SELECT 1 AS x")
                .unwrap()
                .with_partitions(daily),
        )
        .build()
        .unwrap();
    let at = chrono::Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap();
    let clock = Arc::new(spine_engine::clock::ManualClock::new(at));
    let e = Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap()
        .with_clock(clock);
    let report = e.materialize(MaterializeRequest::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    for table in ["whole", "parts"] {
        let log = dir.path().join("warehouse").join(table).join("_delta_log");
        let mut times = Vec::new();
        for e in std::fs::read_dir(&log).unwrap().flatten() {
            if e.path().extension().is_none_or(|x| x != "json") {
                continue;
            }
            for line in std::fs::read_to_string(e.path()).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(t) = v.pointer("/add/modificationTime") {
                    times.push(t.as_i64().unwrap());
                }
            }
        }
        assert!(!times.is_empty(), "{table}");
        assert!(
            times.iter().all(|t| *t == at.timestamp_millis()),
            "{table}: {times:?}"
        );
    }
}
