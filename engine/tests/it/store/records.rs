//! Runs, steps, sequence numbers, materializations and events.

use super::*;

pub async fn basics(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("sales/orders").unwrap();
    let r1 = RunId::new();
    store
        .create_run(&run(&r1), &[step(&r1, &key, 0)])
        .await
        .unwrap();
    let ev = |k| NewEvent::new(&r1, Some(key.as_str()), k, "info", "x");
    store
        .set_run_status(
            &r1,
            RunStatus::Running,
            None,
            NewEvent::new(&r1, None, EventKind::RunStarted, "info", "go"),
        )
        .await
        .unwrap();
    // Sequence numbers increase per asset across attempts and runs, and start at the store clock's
    // time in ms (a lost or restored store cannot repeat a number a table holds).
    let before_ms = chrono::Utc::now().timestamp_millis();
    let first = store
        .start_step(
            &r1,
            &StepKey::whole(key.clone()),
            1,
            ev(EventKind::StepStarted),
        )
        .await
        .unwrap();
    assert_eq!(first.previous, 0);
    assert!(
        first.seq >= before_ms,
        "{first:?} below the time {before_ms}"
    );
    store
        .attempt_failed(
            &r1,
            &StepKey::whole(key.clone()),
            "oops",
            ev(EventKind::StepAttemptFailed),
        )
        .await
        .unwrap();
    let second = store
        .start_step(
            &r1,
            &StepKey::whole(key.clone()),
            2,
            ev(EventKind::StepStarted),
        )
        .await
        .unwrap();
    assert_eq!(second.previous, first.seq);
    assert!(second.seq > first.seq);
    let outcome = StepOutcome {
        failure_class: None,
        status: StepStatus::Succeeded,
        error: None,
        reason: None,
        materialization: Some(mat(&r1, &key, second.seq, 0)),
        events: vec![ev(EventKind::Materialization)],
    };
    let id = store
        .finish_step(&r1, &StepKey::whole(key.clone()), outcome)
        .await
        .unwrap()
        .unwrap();
    store
        .set_run_status(
            &r1,
            RunStatus::Succeeded,
            None,
            NewEvent::new(&r1, None, EventKind::RunSucceeded, "info", "ok"),
        )
        .await
        .unwrap();

    let got = store.get_run(&r1.0[..12]).await.unwrap();
    assert_eq!(got.status, RunStatus::Succeeded);
    assert!(got.started_at.is_some() && got.finished_at.is_some());
    let steps = store.steps(&r1).await.unwrap();
    assert_eq!(
        (steps[0].status, steps[0].attempt, steps[0].seq),
        (StepStatus::Succeeded, 2, Some(second.seq))
    );
    let latest = store.latest_materializations().await.unwrap();
    let whole = StepKey::whole(key.clone());
    assert_eq!(latest[&whole].id, id);
    assert_eq!(latest[&whole].m.upstream[0].delta_version, Some(3));
    assert_eq!(
        store
            .latest_materialization(&whole)
            .await
            .unwrap()
            .map(|m| m.id),
        Some(id)
    );
    let events = store.events(&r1, 0).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "run_queued",
            "run_started",
            "step_started",
            "step_attempt_failed",
            "step_started",
            "materialization",
            "run_succeeded"
        ]
    );

    let r2 = RunId::new();
    store
        .create_run(&run(&r2), &[step(&r2, &key, 0)])
        .await
        .unwrap();
    let third = store
        .start_step(
            &r2,
            &StepKey::whole(key.clone()),
            1,
            ev(EventKind::StepStarted),
        )
        .await
        .unwrap();
    assert_eq!(third.previous, second.seq);
    assert!(third.seq > second.seq);
    assert_eq!(store.list_runs(10).await.unwrap().len(), 2);
    assert!(store.get_run("zzzz").await.is_err());
    let lineage = store.dump_table("lineage").await.unwrap();
    assert_eq!(lineage[0]["upstream_key"], "up");
    assert!(
        store.dump_table("sqlite_master").await.is_err(),
        "only store tables can be dumped"
    );
}

/// Steps, sequence numbers, claims and materializations are per step key: one partition's do not
/// count for another's or for the whole asset's.
pub async fn partitions_are_separate_step_keys(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("events").unwrap();
    let r = RunId::new();
    let part = |p: &str| StepKey {
        asset: key.clone(),
        partition: Some(PartitionKey(p.into())),
    };
    let steps: Vec<StepRecord> = ["2026-01-01", "2026-01-02"]
        .iter()
        .enumerate()
        .map(|(i, p)| StepRecord::planned(&r, i as i64, &part(p)))
        .collect();
    store.create_run(&run(&r), &steps).await.unwrap();
    let got = store.steps(&r).await.unwrap();
    assert_eq!(got[1].step_key(), part("2026-01-02"));
    assert_eq!(got[1].step_id, "events[2026-01-02]");
    let ev = || NewEvent::new(&r, None, EventKind::StepStarted, "info", "x");
    let mut seqs = Vec::new();
    for p in ["2026-01-01", "2026-01-02", "2026-01-01"] {
        let sk = part(p);
        let c = claim(&r, "events", "h:1:a", 1_000);
        let c = StepClaim {
            step: sk.clone(),
            ..c
        };
        seqs.push(
            store
                .start_claimed_step(&c, 1, ev(), 0, None)
                .await
                .unwrap()
                .expect("each partition has its own claim"),
        );
    }
    let previous: Vec<i64> = seqs.iter().map(|s| s.previous).collect();
    assert_eq!(
        previous,
        [0, 0, seqs[0].seq],
        "sequence numbers count per partition"
    );
    assert!(seqs[2].seq > seqs[0].seq);
    let m = |p: &str, seq| NewMaterialization {
        partition_key: Some(PartitionKey(p.into())),
        step_id: part(p).to_string(),
        ..mat(&r, &key, seq, seq)
    };
    for (p, seq) in [("2026-01-01", 2), ("2026-01-02", 1)] {
        let outcome = StepOutcome {
            failure_class: None,
            status: StepStatus::Succeeded,
            error: None,
            reason: None,
            materialization: Some(m(p, seq)),
            events: vec![],
        };
        store.finish_step(&r, &part(p), outcome).await.unwrap();
    }
    let latest = store.latest_materializations().await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[&part("2026-01-01")].m.seq, 2);
    assert_eq!(latest[&part("2026-01-02")].m.seq, 1);
    assert!(store
        .latest_materialization(&StepKey::whole(key.clone()))
        .await
        .unwrap()
        .is_none());
    // Ending the steps released both partitions' claims.
    for p in ["2026-01-01", "2026-01-02"] {
        let other = StepClaim {
            step: part(p),
            ..claim(&RunId::new(), "events", "h:2:b", 1_000)
        };
        assert_eq!(
            store.claim_step(&other, 0, None).await.unwrap(),
            ClaimOutcome::Claimed
        );
    }
}

/// Records of a step key follow its sequence numbers: a dead run's commit settled after a newer
/// attempt of the same step key was recorded is not recorded (its materialization event becomes a
/// warning), and the newer one stays the latest. One statement, so no writer comes in between.
pub async fn overtaken_records_are_not_recorded(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("sales/orders").unwrap();
    let (old, new) = (RunId::new(), RunId::new());
    for r in [&old, &new] {
        store
            .create_run(&run(r), &[step(r, &key, 0)])
            .await
            .unwrap();
    }
    let start = |r: &RunId| {
        let store = store.clone();
        let (r, key) = (r.clone(), key.clone());
        async move {
            store
                .start_step(
                    &r,
                    &StepKey::whole(key.clone()),
                    1,
                    NewEvent::new(&r, Some(key.as_str()), EventKind::StepStarted, "info", "x"),
                )
                .await
                .unwrap()
        }
    };
    let finish = |r: &RunId, seq: i64, version: i64| {
        let store = store.clone();
        let (r, key) = (r.clone(), key.clone());
        async move {
            store
                .finish_step(
                    &r,
                    &StepKey::whole(key.clone()),
                    StepOutcome {
                        failure_class: None,
                        status: StepStatus::Succeeded,
                        error: None,
                        reason: None,
                        materialization: Some(mat(&r, &key, seq, version)),
                        events: vec![NewEvent::new(
                            &r,
                            Some(key.as_str()),
                            EventKind::Materialization,
                            "info",
                            "x",
                        )],
                    },
                )
                .await
                .unwrap()
        }
    };
    let a = start(&old).await;
    let b = start(&new).await;
    assert!(b.seq > a.seq);
    let newer = finish(&new, b.seq, 1).await.expect("the newer is recorded");
    assert_eq!(finish(&old, a.seq, 0).await, None, "the overtaken one");
    let whole = StepKey::whole(key.clone());
    let latest = store.latest_materialization(&whole).await.unwrap().unwrap();
    assert_eq!((latest.id, latest.m.delta_version), (newer, 1));
    assert_eq!(store.materializations(&key, 10).await.unwrap().len(), 1);
    let events = store.events(&old, 0).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event.kind.as_str(), "log", "{last:?}");
    assert_eq!(
        store.steps(&old).await.unwrap()[0].status,
        StepStatus::Succeeded
    );
}

/// A run's life beyond one executor: taken by one process, taken over only by one that saw it as it
/// was, parked and signalled, listed while active; events appended and read in pages; short ids; a
/// store stamping another clock's time.
pub async fn lifecycle(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("a/b").unwrap();
    let whole = StepKey::whole(key.clone());
    let r = RunId::new();
    let ev = |k| NewEvent::new(&r, Some(key.as_str()), k, "info", "x");
    store
        .create_run(&run(&r), &[step(&r, &key, 0)])
        .await
        .unwrap();
    assert_eq!(
        store.active_runs().await.unwrap().len(),
        1,
        "queued is active"
    );
    let lease = |pid: i64, until: i64| RunLease {
        pid,
        host: "h".into(),
        owner: format!("h:{pid}:{r}"),
        lease_until_ms: until,
    };
    let started = |s| NewEvent::new(&r, None, EventKind::RunStarted, "info", s);
    assert!(store
        .start_run(&r, &lease(1, 5_000), started("one"))
        .await
        .unwrap());
    assert!(
        !store
            .start_run(&r, &lease(2, 5_000), started("two"))
            .await
            .unwrap(),
        "a running run is taken once"
    );
    let seen = store.get_run(r.as_str()).await.unwrap();
    assert_eq!(
        (
            seen.status,
            seen.pid,
            seen.host.as_deref(),
            seen.lease_until_ms
        ),
        (RunStatus::Running, Some(1), Some("h"), Some(5_000))
    );
    // Two processes settling it as they saw it: one wins.
    assert!(store.take_over_run(&seen, &lease(3, 9_000)).await.unwrap());
    assert!(!store.take_over_run(&seen, &lease(4, 9_000)).await.unwrap());
    assert_eq!(store.get_run(r.as_str()).await.unwrap().pid, Some(3));

    // Parked on a signal: waiting, then pending once, with the signal's event.
    store
        .start_step(&r, &whole, 1, ev(EventKind::StepStarted))
        .await
        .unwrap();
    let parked = StepOutcome {
        status: StepStatus::Waiting,
        error: None,
        failure_class: None,
        reason: Some("approval".into()),
        materialization: None,
        events: vec![],
    };
    assert_eq!(store.finish_step(&r, &whole, parked).await.unwrap(), None);
    assert_eq!(
        store.steps(&r).await.unwrap()[0].status,
        StepStatus::Waiting
    );
    let signal = || NewEvent::new(&r, Some(key.as_str()), EventKind::Log, "info", "signal");
    assert!(store.signal_step(&r, &whole, signal()).await.unwrap());
    assert!(!store.signal_step(&r, &whole, signal()).await.unwrap());
    assert_eq!(
        store.steps(&r).await.unwrap()[0].status,
        StepStatus::Pending
    );
    assert_eq!(
        store
            .events(&r, 0)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.event.message == "signal")
            .count(),
        1
    );

    // Appended events come back in order, page by page.
    let before = store.events(&r, 0).await.unwrap().len();
    let logs: Vec<NewEvent> = (0..5)
        .map(|i| NewEvent::new(&r, None, EventKind::Log, "info", format!("log {i}")))
        .collect();
    store.append_events(&logs).await.unwrap();
    let (mut after, mut pages, mut seen_logs) = (0, 0, Vec::new());
    loop {
        let page = store.events_page(&r, after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        assert!(page.windows(2).all(|w| w[0].id < w[1].id));
        assert!(page[0].id > after);
        after = page[page.len() - 1].id;
        pages += 1;
        seen_logs.extend(page.into_iter().map(|e| e.event.message));
    }
    assert_eq!(seen_logs.len(), before + 5);
    assert_eq!(pages, (before + 5).div_ceil(2));
    assert_eq!(
        seen_logs[before..],
        ["log 0", "log 1", "log 2", "log 3", "log 4"]
    );

    store
        .set_run_status(
            &r,
            RunStatus::Succeeded,
            None,
            NewEvent::new(&r, None, EventKind::RunSucceeded, "info", "ok"),
        )
        .await
        .unwrap();
    assert!(store.active_runs().await.unwrap().is_empty());
    assert!(store
        .set_run_status(
            &RunId::new(),
            RunStatus::Failed,
            None,
            NewEvent::new(&r, None, EventKind::RunFailed, "info", "x"),
        )
        .await
        .is_err());

    // The short id names the run alone and reads it back.
    let short = store.short_run_id(&r).await.unwrap();
    assert!(short.len() >= SHORT_ID_LEN && r.as_str().starts_with(&short));
    assert_eq!(store.get_run(&short).await.unwrap().run_id, r);

    // A store on another clock stamps that clock's time, and its sequence numbers are at least it.
    let at = chrono::DateTime::parse_from_rfc3339("2031-02-03T04:05:06Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let later = store.with_clock(Arc::new(spine_engine::clock::ManualClock::new(at)));
    let r2 = RunId::new();
    later
        .create_run(&run(&r2), &[step(&r2, &key, 0)])
        .await
        .unwrap();
    let events = later.events(&r2, 0).await.unwrap();
    assert!(
        events[0].ts.starts_with("2031-02-03T04:05:06"),
        "{events:?}"
    );
    let s = later
        .start_step(
            &r2,
            &whole,
            1,
            NewEvent::new(&r2, None, EventKind::StepStarted, "info", "x"),
        )
        .await
        .unwrap();
    assert!(s.seq >= at.timestamp_millis());
    store.close().await;
}
