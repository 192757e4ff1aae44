//! Lease-based recovery through the library API, on a manual clock: a run whose executor stopped
//! renewing its lease (another host's process: no pid to look at) is settled once the lease has run
//! out and not before; an executor that keeps renewing is never settled, however long its step takes.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use spine_engine::clock::{Clock, ManualClock};
use spine_engine::key::{AssetKey, StepKey};
use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::{NewEvent, RunLease, RunStatus, StepClaim, StepStatus};
use spine_engine::{Engine, MaterializeRequest};
use spine_schemas::events::EventKind;
use std::sync::Arc;
use std::time::Duration;

fn start() -> ManualClock {
    ManualClock::new(chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap())
}

/// `a`: a rust asset that takes `delay` (real time).
async fn engine(dir: &std::path::Path, clock: &ManualClock, delay: Duration) -> Engine {
    let project = Project::builder(ProjectConfig::in_dir(dir).unwrap())
        .asset(
            AssetSpec::rust("a", &[], "v1", move |_ctx| async move {
                tokio::time::sleep(delay).await;
                let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
                let col = Arc::new(Int64Array::from_iter_values(1..=3));
                Ok(vec![RecordBatch::try_new(schema, vec![col]).unwrap()])
            })
            .unwrap(),
        )
        .build()
        .unwrap();
    Engine::open(project, KindRegistry::builtin())
        .await
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
}

#[tokio::test]
async fn a_run_whose_executor_lease_ran_out_is_settled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = start();
    let e = engine(dir.path(), &clock, Duration::ZERO).await;
    let run_id = e.submit(None, false).await.unwrap();
    // An executor on another host takes the run, starts its step, and vanishes.
    let lease = RunLease {
        pid: 1,
        host: "elsewhere".into(),
        owner: format!("elsewhere:1:{run_id}"),
        lease_until_ms: clock.now_ms() + 60_000,
    };
    let ev = |k| NewEvent::new(&run_id, None, k, "info", "x");
    assert!(e
        .store()
        .start_run(&run_id, &lease, ev(EventKind::RunStarted))
        .await
        .unwrap());
    let claim = StepClaim {
        step: StepKey::whole(AssetKey::parse("a").unwrap()),
        run_id: run_id.clone(),
        owner: lease.owner.clone(),
        lease_until_ms: lease.lease_until_ms,
    };
    e.store()
        .start_claimed_step(&claim, 1, ev(EventKind::StepStarted), clock.now_ms(), None)
        .await
        .unwrap()
        .expect("claimed");
    clock.advance(Duration::from_secs(59));
    assert!(
        e.recover_interrupted_runs().await.unwrap().is_empty(),
        "the lease still holds"
    );
    assert_eq!(
        e.store().get_run(run_id.as_str()).await.unwrap().status,
        RunStatus::Running
    );
    clock.advance(Duration::from_secs(2));
    let settled = e.recover_interrupted_runs().await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].abandoned, ["a"]);
    let run = e.store().get_run(run_id.as_str()).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap_or_default().contains("lease"),
        "{run:?}"
    );
    // The vanished executor's claim went with it: a new run computes `a` at once.
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        e.materialize(MaterializeRequest::default()),
    )
    .await
    .expect("not held back by the dead claim")
    .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewing_executor_keeps_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let clock = start();
    let e = engine(dir.path(), &clock, Duration::from_secs(3)).await;
    let run = tokio::spawn({
        let e = e.clone();
        async move { e.materialize(MaterializeRequest::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three minutes pass on the clock while the step works; the heartbeat renews every 20 s.
    for _ in 0..9 {
        clock.advance(Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            e.recover_interrupted_runs().await.unwrap().is_empty(),
            "a renewing executor's run is not settled"
        );
    }
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(report.steps[0].status, StepStatus::Succeeded);
}
