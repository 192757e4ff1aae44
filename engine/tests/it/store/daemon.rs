//! The daemon's part: ticks recorded once per schedule and time (with the run they queue, in the same
//! transaction), the schedule's cursor, and the one-daemon lock with leases and takeovers.

use super::*;

fn tick(schedule: &str, at: &str, status: &str, run_id: Option<&RunId>) -> TickRecord {
    TickRecord {
        schedule: schedule.into(),
        tick_at: at.into(),
        status: status.into(),
        run_id: run_id.cloned(),
        reason: Some("on time".into()),
        created_at: now(),
    }
}

pub async fn ticks_and_the_daemon_lock(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("daily").unwrap();
    let r = RunId::new();
    let planned = PlannedRun {
        run: run(&r),
        steps: vec![step(&r, &key, 0)],
    };
    let t1 = tick("nightly", "2026-01-01T00:00:00Z", "launched", Some(&r));
    assert!(store.record_tick(&t1, Some(&planned)).await.unwrap());
    assert_eq!(
        store.get_run(r.as_str()).await.unwrap().status,
        RunStatus::Queued
    );
    assert_eq!(store.steps(&r).await.unwrap().len(), 1);
    // The same tick again: nothing written, not even its run.
    let r2 = RunId::new();
    let again = PlannedRun {
        run: run(&r2),
        steps: vec![step(&r2, &key, 0)],
    };
    let t1b = tick("nightly", "2026-01-01T00:00:00Z", "launched", Some(&r2));
    assert!(!store.record_tick(&t1b, Some(&again)).await.unwrap());
    assert!(store.get_run(r2.as_str()).await.is_err());
    assert!(store
        .record_tick(
            &tick("nightly", "2026-01-02T00:00:00Z", "started", None),
            None
        )
        .await
        .unwrap());
    // A fired tick (by hand) is listed but is not the cursor.
    assert!(store
        .record_tick(
            &tick("nightly", "2026-01-05T00:00:00Z", "fired", None),
            None
        )
        .await
        .unwrap());
    assert!(store
        .record_tick(
            &tick("hourly", "2026-01-03T00:00:00Z", "launched", None),
            None
        )
        .await
        .unwrap());
    assert_eq!(
        store.last_tick("nightly").await.unwrap().as_deref(),
        Some("2026-01-02T00:00:00Z")
    );
    assert_eq!(store.last_tick("never").await.unwrap(), None);
    let all: Vec<(String, String)> = store
        .ticks(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.schedule, t.tick_at))
        .collect();
    assert_eq!(
        all,
        vec![
            ("nightly".into(), "2026-01-05T00:00:00Z".into()),
            ("hourly".into(), "2026-01-03T00:00:00Z".into()),
            ("nightly".into(), "2026-01-02T00:00:00Z".into()),
            ("nightly".into(), "2026-01-01T00:00:00Z".into()),
        ],
        "newest first"
    );
    let nightly = store.ticks(Some("nightly"), 2).await.unwrap();
    assert_eq!(nightly.len(), 2);
    let first = store
        .ticks(Some("nightly"), 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (first.status.as_str(), first.run_id, first.reason.as_deref()),
        ("launched", Some(r.clone()), Some("on time"))
    );

    // The lock: one holder; renewals; taken when expired or from a named dead owner; released.
    let lock = |owner: &str, until: i64| DaemonLock {
        owner: owner.into(),
        pid: 7,
        host: "h".into(),
        lease_until_ms: until,
    };
    assert_eq!(store.daemon_lock().await.unwrap(), None);
    assert_eq!(
        store
            .take_daemon_lock(&lock("a", 1_000), 0, None)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .take_daemon_lock(&lock("b", 2_000), 500, None)
            .await
            .unwrap(),
        Err(lock("a", 1_000))
    );
    assert_eq!(
        store
            .take_daemon_lock(&lock("a", 3_000), 500, None)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .take_daemon_lock(&lock("b", 4_000), 2_000, None)
            .await
            .unwrap(),
        Err(lock("a", 3_000)),
        "the renewal moved the lease"
    );
    assert_eq!(
        store
            .take_daemon_lock(&lock("b", 4_000), 3_001, None)
            .await
            .unwrap(),
        Ok(()),
        "expired"
    );
    assert_eq!(
        store
            .take_daemon_lock(&lock("c", 5_000), 3_500, Some("b"))
            .await
            .unwrap(),
        Ok(()),
        "taken from a dead owner"
    );
    store.release_daemon_lock("b").await.unwrap();
    assert_eq!(store.daemon_lock().await.unwrap(), Some(lock("c", 5_000)));
    store.release_daemon_lock("c").await.unwrap();
    assert_eq!(store.daemon_lock().await.unwrap(), None);
}
