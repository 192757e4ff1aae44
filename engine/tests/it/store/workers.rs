//! The worker half: every state change is guarded by the state its caller saw.

use super::*;

fn ended(status: StepStatus) -> StepOutcome {
    StepOutcome {
        failure_class: None,
        status,
        error: None,
        reason: Some("r".into()),
        materialization: None,
        events: vec![],
    }
}

fn ev(r: &RunId, kind: EventKind) -> NewEvent {
    NewEvent::new(r, Some("x"), kind, "info", "e")
}

/// Queued runs, runs workers hold and signalled waiting runs are listed (oldest first); others not.
pub async fn worker_runs_lists_what_workers_may_take(store: Arc<dyn RunStore>) {
    let x = AssetKey::parse("x").unwrap();
    let y = AssetKey::parse("y").unwrap();
    let ids: Vec<RunId> = (0..4).map(|_| RunId::new()).collect();
    for r in &ids {
        // y waits behind x.
        store
            .create_run(&run(r), &[step(r, &x, 0), step(r, &y, 1)])
            .await
            .unwrap();
    }
    let lease = |owner: &str| RunLease {
        pid: 1,
        host: "h".into(),
        owner: owner.into(),
        lease_until_ms: 0,
    };
    let started = |r: &RunId| NewEvent::new(r, None, EventKind::RunStarted, "info", "s");
    // 0 stays queued; 1 is held by workers; 2 by one executor; 3 runs under workers, then waits.
    assert!(store
        .start_run(&ids[1], &lease(WORKERS_OWNER), started(&ids[1]))
        .await
        .unwrap());
    assert!(store
        .start_run(&ids[2], &lease("h:1:r"), started(&ids[2]))
        .await
        .unwrap());
    assert!(store
        .start_run(&ids[3], &lease(WORKERS_OWNER), started(&ids[3]))
        .await
        .unwrap());
    // Run 3's step parks, then the run waits.
    let k = StepKey::whole(x.clone());
    store
        .start_step(&ids[3], &k, 1, ev(&ids[3], EventKind::StepStarted))
        .await
        .unwrap();
    store
        .finish_step(&ids[3], &k, ended(StepStatus::Waiting))
        .await
        .unwrap();
    let wait = NewEvent::new(&ids[3], None, EventKind::RunWaiting, "info", "w");
    assert!(store
        .end_run(&ids[3], RunStatus::Waiting, None, wait)
        .await
        .unwrap());
    let listed = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        listed(store.worker_runs(WORKERS_OWNER).await.unwrap()),
        vec![ids[0].clone(), ids[1].clone()],
        "a waiting run with nothing signalled is not listed, steps pending behind its parked one or not"
    );
    assert_eq!(
        listed(store.waiting_runs().await.unwrap()),
        vec![ids[3].clone()],
        "the waiting run, signalled or not"
    );
    assert_eq!(
        listed(store.worker_runs(QUEUE_OWNER).await.unwrap()),
        vec![ids[0].clone()],
        "a run the workers hold is not a queue's: only the queued one"
    );
    let held = store.get_run(ids[1].as_str()).await.unwrap();
    assert_eq!(held.owner.as_deref(), Some(WORKERS_OWNER));
    let sig = NewEvent::new(&ids[3], Some("x"), EventKind::StepSignalled, "info", "s");
    // Signalled: listed again.
    assert!(store.signal_step(&ids[3], &k, sig).await.unwrap());
    assert_eq!(
        listed(store.worker_runs(WORKERS_OWNER).await.unwrap()),
        vec![ids[0].clone(), ids[1].clone(), ids[3].clone()]
    );
}

/// A step starts only while ready: pending, or running the attempt before (a retry or a re-claim);
/// a claim another live owner holds is reported, and nothing changes.
pub async fn ready_steps_start_once(store: Arc<dyn RunStore>) {
    let x = AssetKey::parse("x").unwrap();
    let r = RunId::new();
    store
        .create_run(&run(&r), &[step(&r, &x, 0)])
        .await
        .unwrap();
    let a = claim(&r, "x", "h:1:w:a", 10_000);
    let b = claim(&r, "x", "h:2:w:b", 10_000);
    let started = store
        .start_ready_step(
            &a,
            &ClaimLimits::default(),
            1,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    let Claimed::Got(first) = started else {
        panic!("a starts it: {started:?}")
    };
    // b saw it pending too: it has moved on.
    let stale = store
        .start_ready_step(
            &b,
            &ClaimLimits::default(),
            1,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(stale, Claimed::Moved);
    // b would retry it: the claim is a's.
    let held = store
        .start_ready_step(
            &b,
            &ClaimLimits::default(),
            2,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(held, Claimed::Held(ref h) if h.owner == a.owner),
        "{held:?}"
    );
    // a retries: attempt 2 follows attempt 1.
    let retry = store
        .start_ready_step(
            &a,
            &ClaimLimits::default(),
            2,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(retry, Claimed::Got(ref s) if s.seq > first.seq),
        "{retry:?}"
    );
    // An attempt that does not follow the recorded one is refused.
    let stale = store
        .start_ready_step(
            &a,
            &ClaimLimits::default(),
            2,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(stale, Claimed::Moved);
    assert_eq!(
        store
            .finish_claimed_step(&a.owner, &r, &a.step, ended(StepStatus::Failed))
            .await
            .unwrap(),
        Some(None)
    );
    // Ended: nobody starts it again, whoever saw it pending.
    let late = store
        .start_ready_step(
            &b,
            &ClaimLimits::default(),
            1,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(late, Claimed::Moved);
    let s = &store.steps(&r).await.unwrap()[0];
    assert_eq!((s.status, s.attempt), (StepStatus::Failed, 2));
}

/// A running step is re-claimed only once its owner's lease ran out (or from a named dead owner),
/// and only at the attempt and sequence number the caller saw; the old owner's end is then refused.
pub async fn reclaims_take_over_expired_attempts_once(store: Arc<dyn RunStore>) {
    let x = AssetKey::parse("x").unwrap();
    let r = RunId::new();
    store
        .create_run(&run(&r), &[step(&r, &x, 0)])
        .await
        .unwrap();
    let dead = claim(&r, "x", "h:1:w:r", 1_000);
    let Claimed::Got(s) = store
        .start_ready_step(
            &dead,
            &ClaimLimits::default(),
            1,
            ev(&r, EventKind::StepStarted),
            0,
            None,
        )
        .await
        .unwrap()
    else {
        panic!("started")
    };
    let new = claim(&r, "x", "h:2:w:r", 9_000);
    let log = || ev(&r, EventKind::Log);
    // Lease still good at 500 ms.
    let early = store
        .reclaim_step(&new, (1, s.seq), log(), 500, None)
        .await
        .unwrap();
    assert!(matches!(early, Claimed::Held(_)), "{early:?}");
    // The wrong attempt or sequence number: moved on.
    for seen in [(2, s.seq), (1, s.seq + 1)] {
        assert_eq!(
            store
                .reclaim_step(&new, seen, log(), 2_000, None)
                .await
                .unwrap(),
            Claimed::Moved
        );
    }
    // Expired at 2 s: taken over, the step untouched.
    assert_eq!(
        store
            .reclaim_step(&new, (1, s.seq), log(), 2_000, None)
            .await
            .unwrap(),
        Claimed::Got(())
    );
    let step = &store.steps(&r).await.unwrap()[0];
    assert_eq!(
        (step.status, step.attempt, step.seq),
        (StepStatus::Running, 1, Some(s.seq))
    );
    let claims = store.run_claims(&r).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].owner, new.owner);
    // The old owner comes back: its end is not recorded.
    assert_eq!(
        store
            .finish_claimed_step(&dead.owner, &r, &dead.step, ended(StepStatus::Succeeded))
            .await
            .unwrap(),
        None
    );
    // A live claim is taken from an owner named dead.
    let third = claim(&r, "x", "h:3:w:r", 9_000);
    assert_eq!(
        store
            .reclaim_step(&third, (1, s.seq), log(), 2_000, Some(&new.owner))
            .await
            .unwrap(),
        Claimed::Got(())
    );
    let id = store
        .finish_claimed_step(&third.owner, &r, &third.step, ended(StepStatus::Succeeded))
        .await
        .unwrap();
    assert_eq!(id, Some(None));
    assert!(
        store.run_claims(&r).await.unwrap().is_empty(),
        "released with the end"
    );
    assert_eq!(
        store.steps(&r).await.unwrap()[0].status,
        StepStatus::Succeeded
    );
}

/// Pending steps end once; a run ends once, and only from running.
pub async fn pending_steps_and_runs_end_once(store: Arc<dyn RunStore>) {
    let x = AssetKey::parse("x").unwrap();
    let r = RunId::new();
    store
        .create_run(&run(&r), &[step(&r, &x, 0)])
        .await
        .unwrap();
    let k = StepKey::whole(x.clone());
    assert!(store
        .end_pending_step(&r, &k, ended(StepStatus::Skipped))
        .await
        .unwrap());
    assert!(!store
        .end_pending_step(&r, &k, ended(StepStatus::Cancelled))
        .await
        .unwrap());
    assert_eq!(
        store.steps(&r).await.unwrap()[0].status,
        StepStatus::Skipped
    );
    let end = || NewEvent::new(&r, None, EventKind::RunSucceeded, "info", "done");
    assert!(
        !store
            .end_run(&r, RunStatus::Succeeded, None, end())
            .await
            .unwrap(),
        "a queued run is not ended this way"
    );
    let lease = RunLease {
        pid: 1,
        host: "h".into(),
        owner: WORKERS_OWNER.into(),
        lease_until_ms: 0,
    };
    let started = NewEvent::new(&r, None, EventKind::RunStarted, "info", "s");
    assert!(store.start_run(&r, &lease, started).await.unwrap());
    assert!(store
        .end_run(&r, RunStatus::Succeeded, None, end())
        .await
        .unwrap());
    assert!(!store
        .end_run(&r, RunStatus::Failed, Some("x"), end())
        .await
        .unwrap());
    let run = store.get_run(r.as_str()).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(run.finished_at.is_some());
    let ends = store
        .events(&r, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == EventKind::RunSucceeded.as_str())
        .count();
    assert_eq!(ends, 1, "one end event");
}

/// A limit caps the live claims that carry its key, whichever steps they are; ended and expired
/// claims do not count; `_` and `%` in a key are plain characters.
pub async fn limits_cap_live_claims(store: Arc<dyn RunStore>) {
    let r = RunId::new();
    let keys: Vec<AssetKey> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| AssetKey::parse(k).unwrap())
        .collect();
    let steps: Vec<StepRecord> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| step(&r, k, i as i64))
        .collect();
    store.create_run(&run(&r), &steps).await.unwrap();
    let heavy = ClaimLimits::new(vec![("tag:warehouse=heavy".into(), 1)]);
    let start = |asset: &str, limits: ClaimLimits, now: i64| {
        let store = store.clone();
        let c = claim(&r, asset, &format!("h:1:w:{asset}"), now + 1_000);
        let e = NewEvent::new(&r, Some(asset), EventKind::StepStarted, "info", "start");
        async move {
            store
                .start_ready_step(&c, &limits, 1, e, now, None)
                .await
                .unwrap()
        }
    };
    assert!(matches!(
        start("a", heavy.clone(), 0).await,
        Claimed::Got(_)
    ));
    assert_eq!(
        start("b", heavy.clone(), 0).await,
        Claimed::Limited("tag:warehouse=heavy".into())
    );
    assert_eq!(
        store.steps(&r).await.unwrap()[1].status,
        StepStatus::Pending
    );
    // Another key is not limited by it; a key that differs only where `_` stands is another key.
    let like = ClaimLimits::new(vec![("tag:warehouse_heavy".into(), 1)]);
    assert!(matches!(start("b", like, 0).await, Claimed::Got(_)));
    // a's claim expired at 1 s: c may go at 2 s.
    assert!(matches!(
        start("c", heavy.clone(), 2_000).await,
        Claimed::Got(_)
    ));
    // c ends: its claim goes, and d may go.
    let a_claim = claim(&r, "c", "h:1:w:c", 0);
    store
        .finish_claimed_step("h:1:w:c", &r, &a_claim.step, ended(StepStatus::Succeeded))
        .await
        .unwrap();
    assert!(matches!(start("d", heavy, 2_000).await, Claimed::Got(_)));
}
