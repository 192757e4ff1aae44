//! The executor seam (a [`StepQueue`]) with its in-process implementation: `dispatch` hands a run's
//! ready steps to the queue as they become ready, two queue workers execute them, and each step is
//! computed once; a task delivered twice (a worker went silent) is answered from the store, not run
//! again; a task for a run the store does not know is refused.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use spine_engine::key::AssetKey;
use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::{RunStatus, StepStatus};
use spine_engine::{
    CancellationToken, Engine, InProcessQueue, StepQueue, StepTask, TaskOutcome, WorkerOptions,
};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn numbers(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(1..=n))]).unwrap()
}

/// root → a0..a3 (rust, counted, slow enough to overlap) → sink.
fn project(dir: &Path, calls: Arc<AtomicUsize>) -> Project {
    let mut b = Project::builder(ProjectConfig::in_dir(dir).unwrap())
        .asset(AssetSpec::sql("root", "SELECT value AS v FROM generate_series(1, 4)").unwrap());
    for i in 0..4 {
        let calls = calls.clone();
        b = b.asset(
            AssetSpec::rust(&format!("a{i}"), &["root"], "v1", move |_ctx| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Ok(vec![numbers(i + 1)])
                }
            })
            .unwrap(),
        );
    }
    b.asset(
        AssetSpec::sql(
            "sink",
            "SELECT SUM(n) AS s FROM (SELECT n FROM a0 UNION ALL SELECT n FROM a1 UNION ALL SELECT n FROM a2 UNION ALL SELECT n FROM a3)",
        )
        .unwrap(),
    )
    .build()
    .unwrap()
}

async fn engine(dir: &Path, calls: &Arc<AtomicUsize>) -> Engine {
    Engine::open(project(dir, calls.clone()), KindRegistry::builtin())
        .await
        .unwrap()
}

fn worker(queue: Arc<InProcessQueue>, cancel: CancellationToken) -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        pool: None,
        poll: Duration::from_millis(50),
        exit_when_idle: false,
        cancel,
        queue: Some(queue),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatched_steps_run_once_on_queue_workers() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (coord, w1, w2) = (
        engine(dir.path(), &calls).await,
        engine(dir.path(), &calls).await,
        engine(dir.path(), &calls).await,
    );
    let queue = Arc::new(InProcessQueue::default());
    let stop = CancellationToken::new();
    let h1 = {
        let (q, c) = (queue.clone(), stop.clone());
        tokio::spawn(async move { w1.work(worker(q, c)).await })
    };
    let h2 = {
        let (q, c) = (queue.clone(), stop.clone());
        tokio::spawn(async move { w2.work(worker(q, c)).await })
    };
    let run_id = coord.submit(None, false).await.unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        coord.dispatch(
            &run_id,
            queue.clone(),
            Duration::from_millis(50),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the run ends")
    .unwrap();
    stop.cancel();
    let (r1, r2) = (h1.await.unwrap().unwrap(), h2.await.unwrap().unwrap());
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert!(report
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Succeeded));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "each a_i computed once");
    assert_eq!(
        r1.steps + r2.steps,
        6,
        "every step on a queue worker: {r1:?} {r2:?}"
    );
    assert!(
        r1.steps > 0 && r2.steps > 0,
        "both took tasks: {r1:?} {r2:?}"
    );
    assert!(queue.submitted() >= 6, "every step was handed over");
    let sink = coord
        .store()
        .materializations(&AssetKey::parse("sink").unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(sink.len(), 1);

    // The same task again (a redelivery after a worker went silent): answered from the store.
    let again = StepTask::of(
        &run_id,
        &spine_engine::StepKey::whole(AssetKey::parse("a0").unwrap()),
    );
    queue.submit(&again).await.unwrap();
    let stop = CancellationToken::new();
    let w3 = engine(dir.path(), &calls).await;
    let h3 = {
        let (q, c) = (queue.clone(), stop.clone());
        tokio::spawn(async move { w3.work(worker(q, c)).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.cancel();
    let r3 = h3.await.unwrap().unwrap();
    assert_eq!(r3.steps, 0, "nothing ran again: {r3:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let t = tokio::time::timeout(
        Duration::from_millis(300),
        queue.take(&CancellationToken::new()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        t.is_none(),
        "the redelivered task was answered, not left waiting"
    );
}

#[tokio::test]
async fn a_task_for_an_unknown_run_is_refused_and_a_retry_is_delivered_again() {
    let queue = InProcessQueue::default();
    let never = CancellationToken::new();
    let task = StepTask {
        run_id: "r1".into(),
        step_id: "a".into(),
    };
    queue.submit(&task).await.unwrap();
    queue.submit(&task).await.unwrap();
    assert_eq!(queue.submitted(), 1, "handing it over twice queues it once");
    let t = queue.take(&never).await.unwrap().expect("delivered");
    assert_eq!((t.task.clone(), t.delivery), (task.clone(), 1));
    queue
        .finish(&t.token, TaskOutcome::Retry("held".into()))
        .await
        .unwrap();
    let t = queue.take(&never).await.unwrap().expect("delivered again");
    assert_eq!(t.delivery, 2);
    queue
        .finish(&t.token, TaskOutcome::Refused("no such run".into()))
        .await
        .unwrap();
    assert!(queue.take(&never).await.unwrap().is_none());
    assert!(
        queue
            .finish(&t.token, TaskOutcome::Ended(StepStatus::Succeeded))
            .await
            .is_err(),
        "a task is answered once"
    );

    // A queue worker refuses a task of a run its store does not have.
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let w = engine(dir.path(), &calls).await;
    let queue = Arc::new(InProcessQueue::default());
    queue.submit(&task).await.unwrap();
    let stop = CancellationToken::new();
    let h = {
        let (q, c) = (queue.clone(), stop.clone());
        tokio::spawn(async move { w.work(worker(q, c)).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.cancel();
    assert_eq!(h.await.unwrap().unwrap().steps, 0);
    assert!(
        queue.take(&never).await.unwrap().is_none(),
        "refused, so not delivered again"
    );
}
