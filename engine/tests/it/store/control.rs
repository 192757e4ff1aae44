//! Cancelling runs: a queued one at once (with its pending steps), a running one by a request its
//! executor polls, an ended one not at all; progress of many runs in one call.

use super::*;

pub async fn cancel_and_progress(store: Arc<dyn RunStore>) {
    let (a, b) = (AssetKey::parse("a").unwrap(), AssetKey::parse("b").unwrap());
    let (queued, running) = (RunId::new(), RunId::new());
    for r in [&queued, &running] {
        store
            .create_run(&run(r), &[step(r, &a, 0), step(r, &b, 1)])
            .await
            .unwrap();
    }
    let lease = RunLease {
        pid: 1,
        host: "h".into(),
        owner: "h:1".into(),
        lease_until_ms: i64::MAX,
    };
    let ev = |r: &RunId| NewEvent::new(r, None, EventKind::RunStarted, "info", "x");
    assert!(store
        .start_run(&running, &lease, ev(&running))
        .await
        .unwrap());
    store
        .start_step(&running, &StepKey::whole(a.clone()), 1, ev(&running))
        .await
        .unwrap();
    let done = StepOutcome {
        status: StepStatus::Succeeded,
        error: None,
        failure_class: None,
        reason: None,
        materialization: None,
        events: vec![],
    };
    store
        .finish_step(&running, &StepKey::whole(a.clone()), done)
        .await
        .unwrap();
    let progress = store
        .run_progress(&[queued.clone(), running.clone(), RunId::new()])
        .await
        .unwrap();
    assert_eq!(progress.len(), 2, "a run without steps is left out");
    assert_eq!(progress[&queued], (0, 2));
    assert_eq!(progress[&running], (1, 2));

    assert!(!store.cancel_requested(&queued).await.unwrap());
    assert_eq!(
        store.cancel_run(&queued, "operator").await.unwrap(),
        CancelOutcome::Cancelled
    );
    let got = store.get_run(queued.as_str()).await.unwrap();
    assert_eq!(got.status, RunStatus::Cancelled);
    assert!(got.finished_at.is_some());
    assert!(store
        .steps(&queued)
        .await
        .unwrap()
        .iter()
        .all(|s| s.status == StepStatus::Cancelled));
    assert_eq!(
        store.cancel_run(&queued, "again").await.unwrap(),
        CancelOutcome::Ended(RunStatus::Cancelled)
    );

    assert_eq!(
        store.cancel_run(&running, "operator").await.unwrap(),
        CancelOutcome::Requested
    );
    assert!(store.cancel_requested(&running).await.unwrap());
    assert_eq!(
        store.get_run(running.as_str()).await.unwrap().status,
        RunStatus::Running,
        "the executor cancels what has not committed"
    );
    assert!(!store.cancel_requested(&RunId::new()).await.unwrap());
    assert!(store.cancel_run(&RunId::new(), "x").await.is_err());
    let kinds: Vec<String> = store
        .events(&queued, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("run_cancelled"));
}

/// A cancel racing an executor's start: whichever commits first decides, and the other sees it — a
/// run taken by an executor is never also `cancelled` by the store behind its back, and a cancelled
/// run is never taken. Neither call fails (a read-then-write transaction that could not upgrade would
/// fail with a busy database).
pub async fn cancel_racing_start(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("a").unwrap();
    let mut races = Vec::new();
    for i in 0..30 {
        let r = RunId::new();
        store
            .create_run(&run(&r), &[step(&r, &key, 0)])
            .await
            .unwrap();
        let (s1, s2, r1, r2) = (store.clone(), store.clone(), r.clone(), r.clone());
        let start = tokio::spawn(async move {
            let lease = RunLease {
                pid: i,
                host: "h".into(),
                owner: format!("h:{i}"),
                lease_until_ms: i64::MAX,
            };
            let ev = NewEvent::new(&r1, None, EventKind::RunStarted, "info", "x");
            s1.start_run(&r1, &lease, ev).await
        });
        let cancel = tokio::spawn(async move { s2.cancel_run(&r2, "operator").await });
        races.push((r, start, cancel));
    }
    let (mut started, mut cancelled) = (0, 0);
    for (r, start, cancel) in races {
        let took = start
            .await
            .unwrap()
            .expect("start_run fails under a racing cancel");
        let outcome = cancel
            .await
            .unwrap()
            .expect("cancel_run fails under a racing start");
        let status = store.get_run(r.as_str()).await.unwrap().status;
        match (took, outcome) {
            (true, CancelOutcome::Requested) => {
                assert_eq!(status, RunStatus::Running);
                assert!(store.cancel_requested(&r).await.unwrap());
                started += 1;
            }
            (false, CancelOutcome::Cancelled) => {
                assert_eq!(status, RunStatus::Cancelled);
                cancelled += 1;
            }
            other => panic!("run {r}: {other:?} with the run {status}"),
        }
    }
    assert_eq!(started + cancelled, 30);
}
