//! The executor's step claims, tested through the library API: two engines on one SQLite store never
//! compute a step twice; a step held by another live run is waited for, skipped with `no_wait`, and taken
//! over when the holder's lease runs out on a manual clock (no test sleeps for a lease).

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use spine_engine::clock::{Clock, ManualClock};
use spine_engine::key::{AssetKey, RunId, StepKey};
use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::{ClaimOutcome, RunStatus, StepClaim, StepStatus};
use spine_engine::{Engine, MaterializeRequest};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn numbers(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(1..=n))]).unwrap()
}

/// `slow` (a rust asset that counts its computations and takes `delay`) and `down` (SQL over it).
fn project(dir: &Path, calls: Arc<AtomicUsize>, delay: Duration) -> Project {
    Project::builder(ProjectConfig::in_dir(dir).unwrap())
        .asset(
            AssetSpec::rust("slow", &[], "v1", move |_ctx| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    Ok(vec![numbers(5)])
                }
            })
            .unwrap(),
        )
        .asset(AssetSpec::sql("down", "SELECT SUM(n) AS s FROM slow").unwrap())
        .build()
        .unwrap()
}

async fn engine(dir: &Path, calls: &Arc<AtomicUsize>, delay: Duration) -> Engine {
    Engine::open(project(dir, calls.clone(), delay), KindRegistry::builtin())
        .await
        .unwrap()
}

fn step<'a>(r: &'a spine_engine::RunReport, key: &str) -> &'a spine_engine::StepReport {
    r.steps.iter().find(|s| s.key.as_str() == key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_engines_on_one_store_compute_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let a = engine(dir.path(), &calls, Duration::from_millis(400)).await;
    let b = engine(dir.path(), &calls, Duration::from_millis(400)).await;
    let (ra, rb) = tokio::join!(
        a.materialize(MaterializeRequest::default()),
        b.materialize(MaterializeRequest::default())
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.status, RunStatus::Succeeded, "{ra:?}");
    assert_eq!(rb.status, RunStatus::Succeeded, "{rb:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "slow was computed once");
    for key in ["slow", "down"] {
        let computed = [&ra, &rb]
            .iter()
            .filter(|r| step(r, key).status == StepStatus::Succeeded)
            .count();
        assert_eq!(computed, 1, "{key} computed by exactly one run");
        let mats = a
            .store()
            .materializations(&AssetKey::parse(key).unwrap(), 10)
            .await
            .unwrap();
        assert_eq!(mats.len(), 1, "{key}: one materialization");
        let table = a
            .warehouse()
            .open(&AssetKey::parse(key).unwrap(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(table.version(), Some(0), "{key}: exactly one Delta commit");
    }
    let waited = if step(&ra, "slow").status == StepStatus::UpToDate {
        step(&ra, "slow")
    } else {
        step(&rb, "slow")
    };
    assert_eq!(waited.status, StepStatus::UpToDate);
    assert!(
        waited
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("materialized by run"),
        "{waited:?}"
    );
}

/// A claim held by another live owner (this process, another run id), as the store sees it.
async fn hold(engine: &Engine, key: &str, until_ms: i64) -> RunId {
    let other = RunId::new();
    let claim = StepClaim {
        step: StepKey::whole(AssetKey::parse(key).unwrap()),
        run_id: other.clone(),
        owner: format!(
            "{}:{}:{}",
            spine_engine::store::host_name(),
            std::process::id(),
            other
        ),
        lease_until_ms: until_ms,
    };
    let outcome = engine
        .store()
        .claim_step(&claim, engine.clock().now_ms(), None)
        .await
        .unwrap();
    assert_eq!(outcome, ClaimOutcome::Claimed);
    other
}

#[tokio::test]
async fn no_wait_skips_a_step_another_run_holds() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let e = engine(dir.path(), &calls, Duration::ZERO).await;
    let holder = hold(&e, "slow", e.clock().now_ms() + 60_000).await;
    let report = e
        .materialize(MaterializeRequest {
            no_wait: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let slow = step(&report, "slow");
    assert_eq!(slow.status, StepStatus::Skipped);
    assert!(
        slow.reason
            .as_deref()
            .unwrap()
            .contains(&holder.as_str()[..12]),
        "{slow:?}"
    );
    assert_eq!(step(&report, "down").status, StepStatus::Skipped);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_step_waits_until_the_lease_runs_out_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap());
    let e = engine(dir.path(), &calls, Duration::ZERO)
        .await
        .with_clock(Arc::new(clock.clone()));
    hold(&e, "slow", clock.now_ms() + 60_000).await;
    let run = tokio::spawn({
        let e = e.clone();
        async move { e.materialize(MaterializeRequest::default()).await }
    });
    // The step announces that it waits; real time passes, the manual clock does not.
    let mut announced = false;
    for _ in 0..200 {
        let runs = e.store().list_runs(1).await.unwrap();
        if let Some(r) = runs.first() {
            let events = e.store().events(&r.run_id, 0).await.unwrap();
            if events
                .iter()
                .any(|ev| ev.event.message.contains("waiting for it"))
            {
                announced = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(announced, "the step said it waits");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !run.is_finished(),
        "still waiting: the lease has not run out"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    clock.advance(Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!run.is_finished(), "30 s of a 60 s lease");
    clock.advance(Duration::from_secs(31));
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends once the lease expired")
        .unwrap()
        .unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(step(&report, "slow").status, StepStatus::Succeeded);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The run store stamps records with the engine's clock, not the wall clock.
    let run = e.store().get_run(report.run_id.as_str()).await.unwrap();
    assert_eq!(run.created_at, "2030-03-17T17:46:40.000Z");
    let slow = StepKey::whole(AssetKey::parse("slow").unwrap());
    let m = e
        .store()
        .latest_materialization(&slow)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.created_at, "2030-03-17T17:47:41.000Z");
    let events = e.store().events(&report.run_id, 0).await.unwrap();
    assert!(
        events.iter().all(|ev| ev.ts.starts_with("2030-03-17T17:4")),
        "{events:?}"
    );
}

/// Retries apply only to retryable failures: a permanent one ends the step after one attempt.
#[tokio::test]
async fn only_retryable_failures_are_retried() {
    use spine_engine::kinds::{FailureClass, StepError};
    for (class, expected_attempts) in [(FailureClass::Permanent, 1), (FailureClass::Retryable, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let mut spec = AssetSpec::rust("flaky", &[], "v1", move |_ctx| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let e = StepError {
                    class,
                    message: "upstream API said no".into(),
                    retry_after: None,
                    stops_run: false,
                };
                Err(Box::new(e) as spine_engine::project::BoxError)
            }
        })
        .unwrap();
        spec.retries = 2;
        spec.retry_delay = Duration::from_millis(1);
        let project = Project::builder(ProjectConfig::in_dir(dir.path()).unwrap())
            .asset(spec)
            .build()
            .unwrap();
        let e = Engine::open(project, KindRegistry::builtin())
            .await
            .unwrap();
        let report = e.materialize(MaterializeRequest::default()).await.unwrap();
        let s = step(&report, "flaky");
        assert_eq!(s.status, StepStatus::Failed);
        assert_eq!(s.attempts, expected_attempts, "{class:?}");
        assert_eq!(calls.load(Ordering::SeqCst), expected_attempts as usize);
        assert_eq!(s.failure_class, Some(class));
    }
}

/// A run is a record first: one engine submits it (queued, steps pending, nothing computed), another
/// executes it; racing executors take it exactly once; an ended run cannot be executed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_submitted_by_one_engine_is_executed_by_another_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let submitter = engine(dir.path(), &calls, Duration::from_millis(100)).await;
    let run = submitter.submit(None, false).await.unwrap();
    let record = submitter.store().get_run(run.as_str()).await.unwrap();
    assert_eq!(record.status, RunStatus::Queued);
    assert_eq!(record.pid, None, "no owner until executed");
    let steps = submitter.store().steps(&run).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.status == StepStatus::Pending));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "submitting computes nothing"
    );

    let a = engine(dir.path(), &calls, Duration::from_millis(100)).await;
    let b = engine(dir.path(), &calls, Duration::from_millis(100)).await;
    let (ra, rb) = tokio::join!(
        a.execute(&run, Default::default()),
        b.execute(&run, Default::default())
    );
    let (won, lost) = match (ra, rb) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        (ra, rb) => panic!("exactly one executor must take the run: {ra:?} / {rb:?}"),
    };
    assert_eq!(won.status, RunStatus::Succeeded, "{won:?}");
    assert_eq!(won.run_id, run);
    assert!(lost.to_string().contains("E0407"), "{lost}");
    assert!(lost.is_user_error());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let again = a.execute(&run, Default::default()).await.unwrap_err();
    assert!(again.to_string().contains("E0407"), "{again}");
    let record = a.store().get_run(run.as_str()).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.pid, Some(std::process::id() as i64));
}

/// Every event the engine writes is typed: it reads back as a `spine_schemas::events::Event` of the
/// current payload version, and the payload carries what the kind promises.
#[tokio::test]
async fn the_event_log_is_typed() {
    use spine_schemas::events::{Event, EVENT_VERSION};
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let e = engine(dir.path(), &calls, Duration::ZERO).await;
    let report = e.materialize(MaterializeRequest::default()).await.unwrap();
    let events = e.store().events(&report.run_id, 0).await.unwrap();
    assert!(events.len() >= 7, "{events:?}");
    let typed: Vec<Event> = events
        .iter()
        .map(|r| {
            assert_eq!(r.event.data.as_ref().unwrap()["v"], EVENT_VERSION);
            r.event
                .event()
                .unwrap_or_else(|| panic!("untyped event {r:?}"))
        })
        .collect();
    assert!(matches!(
        typed.first(),
        Some(Event::RunQueued { steps: 2, .. })
    ));
    assert!(matches!(typed.last(), Some(Event::RunSucceeded {})));
    let commits: Vec<(i64, i64)> = typed
        .iter()
        .filter_map(|t| match t {
            Event::Materialization {
                delta_version, seq, ..
            } => Some((*delta_version, *seq)),
            _ => None,
        })
        .collect();
    let started: Vec<i64> = events
        .iter()
        .filter(|r| r.event.kind == "step_started")
        .map(|r| r.event.data.as_ref().unwrap()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        commits,
        [(0, started[0]), (0, started[1])],
        "two first commits, each with the seq the store added to its step's start"
    );
    assert!(started.iter().all(|s| *s > 0));
}

/// A kind that parks its step until someone approves: it returns `waiting` until a signal arrives.
struct Approval {
    calls: Arc<AtomicUsize>,
}

impl spine_engine::kinds::AssetKind for Approval {
    fn name(&self) -> &'static str {
        "approval"
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a spine_engine::kinds::StepContext,
    ) -> futures::future::BoxFuture<
        'a,
        Result<spine_engine::kinds::StepOutput, spine_engine::kinds::StepError>,
    > {
        use spine_engine::kinds::{StepData, StepOutput};
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match &ctx.signal {
                None => Ok(StepOutput::waiting("a human approval")),
                Some(s) => {
                    let approved = s["approved"].as_bool().unwrap_or(false) as i64;
                    Ok(StepOutput::data(StepData::Batches(vec![numbers(approved)])))
                }
            }
        })
    }
}

/// A parked step frees its slot (an independent step still runs with concurrency 1), leaves the run
/// `waiting` with its dependents pending and no task held; a signal and a second `execute` resume it
/// where it stopped.
#[tokio::test]
async fn a_parked_step_resumes_after_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut gate = AssetSpec::rust("gate", &[], "v1", |_| async { Ok(vec![]) }).unwrap();
    gate.kind = "approval".into();
    let project = Project::builder(ProjectConfig::in_dir(dir.path()).unwrap())
        .asset(gate)
        .asset(AssetSpec::sql("after_gate", "SELECT COUNT(*) AS n FROM gate").unwrap())
        .asset(AssetSpec::sql("independent", "SELECT 1 AS v").unwrap())
        .build()
        .unwrap();
    let mut kinds = KindRegistry::builtin();
    kinds.register(Arc::new(Approval {
        calls: calls.clone(),
    }));
    let e = Engine::open(project, kinds).await.unwrap();
    let first = e
        .materialize(MaterializeRequest {
            concurrency: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Waiting, "{first:?}");
    assert_eq!(step(&first, "gate").status, StepStatus::Waiting);
    assert_eq!(step(&first, "independent").status, StepStatus::Succeeded);
    assert_eq!(step(&first, "after_gate").status, StepStatus::Pending);
    let run = first.run_id.clone();
    assert_eq!(
        e.store().get_run(run.as_str()).await.unwrap().status,
        RunStatus::Waiting
    );
    // Executing again without a signal changes nothing: the step is still parked.
    let again = e.execute(&run, Default::default()).await.unwrap();
    assert_eq!(again.status, RunStatus::Waiting, "{again:?}");
    assert_eq!(step(&again, "after_gate").status, StepStatus::Pending);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a parked step is not re-run unsignalled"
    );
    // Only a parked step can be signalled.
    let err = e.signal(&run, "after_gate", serde_json::json!({})).await;
    assert!(err.unwrap_err().to_string().contains("E0408"));
    e.signal(
        &run,
        "gate",
        serde_json::json!({"approved": true, "by": "ana"}),
    )
    .await
    .unwrap();
    let second = e.execute(&run, Default::default()).await.unwrap();
    assert_eq!(second.status, RunStatus::Succeeded, "{second:?}");
    assert_eq!(step(&second, "gate").status, StepStatus::Succeeded);
    assert_eq!(step(&second, "after_gate").status, StepStatus::Succeeded);
    assert_eq!(
        step(&second, "independent").status,
        StepStatus::Succeeded,
        "kept from the first execution, not recomputed"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "parked once, resumed once");
    let mats = e
        .store()
        .materializations(&AssetKey::parse("independent").unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(mats.len(), 1);
}

/// A step whose claim another run took over while it computed does not commit: one heartbeat task per
/// execution renews every claim the execution holds, and a renewal that finds one gone marks it lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_claim_was_taken_over_does_not_commit() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new(chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap());
    let e = engine(dir.path(), &calls, Duration::from_secs(3))
        .await
        .with_clock(Arc::new(clock.clone()));
    let run = tokio::spawn({
        let e = e.clone();
        async move {
            let req = MaterializeRequest {
                selection: Some("slow".into()),
                ..Default::default()
            };
            e.materialize(req).await
        }
    });
    for _ in 0..300 {
        if calls.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "slow is computing");
    // Another host's run takes the claim over, naming this run's owner as gone.
    let slow = StepKey::whole(AssetKey::parse("slow").unwrap());
    let other = StepClaim {
        step: slow.clone(),
        run_id: RunId::new(),
        owner: "elsewhere:1:other".into(),
        lease_until_ms: clock.now_ms() + 600_000,
    };
    let ClaimOutcome::Held(holder) = e
        .store()
        .claim_step(&other, clock.now_ms(), None)
        .await
        .unwrap()
    else {
        panic!("the running step holds its claim")
    };
    let taken = e
        .store()
        .claim_step(&other, clock.now_ms(), Some(&holder.owner))
        .await
        .unwrap();
    assert_eq!(taken, ClaimOutcome::Claimed);
    // The heartbeat's next beat finds the claim gone.
    clock.advance(Duration::from_secs(21));
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap();
    let s = step(&report, "slow");
    assert_eq!(s.status, StepStatus::Failed, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("took it over"),
        "{s:?}"
    );
    assert_eq!(
        s.failure_class,
        Some(spine_engine::kinds::FailureClass::Retryable)
    );
    let key = AssetKey::parse("slow").unwrap();
    assert!(
        e.warehouse().open(&key, None).await.unwrap().is_none(),
        "nothing committed"
    );
    assert!(e
        .store()
        .materializations(&key, 10)
        .await
        .unwrap()
        .is_empty());
    // The other run's claim stays: ending the step released only this run's own.
    let again = StepClaim {
        run_id: RunId::new(),
        owner: "third:1:x".into(),
        ..other
    };
    assert!(matches!(
        e.store().claim_step(&again, clock.now_ms(), None).await.unwrap(),
        ClaimOutcome::Held(h) if h.owner == "elsewhere:1:other"
    ));
}
