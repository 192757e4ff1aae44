//! The UI's data read from a real run store: after a materialization and a code change, the catalog
//! says what is fresh and stale with its rows, the run list has the run, and a run's detail has its
//! steps and events, fetched again only after the last event seen; an active run has its progress.

use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::{Engine, MaterializeRequest};
use spine_tui::model::{self, AssetDetail, RunDetail};

async fn engine(dir: &std::path::Path, sum: &str) -> Engine {
    let config = ProjectConfig::in_dir(dir).unwrap();
    let project = Project::builder(config)
        .asset(AssetSpec::sql("raw/n", "SELECT value AS n FROM generate_series(1, 10)").unwrap())
        .asset(AssetSpec::sql("marts/total", &format!("SELECT {sum}(n) AS t FROM raw.n")).unwrap())
        .build()
        .unwrap();
    Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_catalog_runs_and_a_run_come_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), "SUM").await;
    let report = e.materialize(MaterializeRequest::default()).await.unwrap();
    let e = engine(dir.path(), "MAX").await;
    let s = model::load(&e, 10).await.unwrap();
    let states: Vec<(&str, &str, Option<i64>)> = s
        .assets
        .iter()
        .map(|a| (a.key.as_str(), a.state.as_str(), a.rows))
        .collect();
    assert_eq!(
        states,
        [
            ("raw/n", "fresh", Some(10)),
            ("marts/total", "stale", Some(1))
        ]
    );
    assert!(s.assets[1]
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("code"));
    assert_eq!(s.assets[1].deps, ["raw/n"]);
    assert_eq!(s.runs.len(), 1);
    assert_eq!(s.runs[0].id, report.run_id.as_str());
    assert_eq!(s.runs[0].status, "succeeded");

    let mut d = RunDetail::default();
    d.load(&e, &s.runs[0].id).await.unwrap();
    let steps: Vec<(&str, &str)> = d
        .steps
        .iter()
        .map(|s| (s.step_id.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        steps,
        [("raw/n", "succeeded"), ("marts/total", "succeeded")]
    );
    let n = d.log.len();
    assert!(n >= 4, "{:?}", d.log);
    assert!(d.log.windows(2).all(|w| w[0].id < w[1].id));
    // Polling again adds nothing new, and repeats nothing.
    d.load(&e, &s.runs[0].id).await.unwrap();
    assert_eq!(d.log.len(), n);

    let a = AssetDetail::load(&e, "marts/total", 10).await.unwrap();
    assert_eq!(a.history.len(), 1);
    assert_eq!(a.history[0].reads, ["raw/n@0"]);
    assert_eq!(a.history[0].rows, 1);

    // A queued run shows its progress (no step ended of two); an ended one none. Cancelled, it
    // has ended.
    let queued = e.submit(None, true).await.unwrap();
    let s = model::load(&e, 10).await.unwrap();
    assert_eq!(s.runs[0].id, queued.as_str());
    assert_eq!(s.runs[0].progress, Some((0, 2)));
    assert_eq!(s.runs[1].progress, None);
    e.cancel_run(queued.as_str()).await.unwrap();
    let runs = model::runs(&e, 10).await.unwrap();
    assert_eq!(
        (runs[0].status.as_str(), runs[0].progress),
        ("cancelled", None)
    );
    e.store().close().await;
}
