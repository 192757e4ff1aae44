//! Retention: old runs' records are pruned, and everything staleness, lineage, reproduce,
//! failed-partition state and schedule cursors read stays; a dry run counts the same and changes
//! nothing.

use super::*;
use spine_engine::clock::ManualClock;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A run of one step of `key` (partition `p`) on `store`'s clock that commits `m` (version `v`,
/// published or not, reading `upstream`) or ends as `failed`; the materialization's id.
async fn ended_run(
    store: &Arc<dyn RunStore>,
    key: &AssetKey,
    p: Option<&str>,
    commit: Option<(i64, bool, Vec<UpstreamRead>)>,
) -> (RunId, Option<i64>) {
    let r = RunId::new();
    let sk = StepKey {
        asset: key.clone(),
        partition: p.map(|p| PartitionKey(p.into())),
    };
    store
        .create_run(&run(&r), &[StepRecord::planned(&r, 0, &sk)])
        .await
        .unwrap();
    let ev = |k| NewEvent::new(&r, None, k, "info", "x");
    store
        .set_run_status(&r, RunStatus::Running, None, ev(EventKind::RunStarted))
        .await
        .unwrap();
    let s = store
        .start_step(&r, &sk, 1, ev(EventKind::StepStarted))
        .await
        .unwrap();
    let (status, materialization) = match commit {
        Some((v, published, upstream)) => {
            let mut m = mat(&r, key, s.seq, v);
            m.partition_key = sk.partition.clone();
            m.step_id = sk.to_string();
            m.published = published;
            m.upstream = upstream;
            m.checks = vec![];
            (StepStatus::Succeeded, Some(m))
        }
        None => (StepStatus::Failed, None),
    };
    let outcome = StepOutcome {
        status,
        error: None,
        failure_class: None,
        reason: None,
        materialization,
        events: vec![ev(EventKind::Log)],
    };
    let id = store.finish_step(&r, &sk, outcome).await.unwrap();
    let end = if status == StepStatus::Failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    store
        .set_run_status(&r, end, None, ev(EventKind::RunSucceeded))
        .await
        .unwrap();
    (r, id)
}

pub async fn pruning_keeps_what_is_read(store: Arc<dyn RunStore>) {
    // Old records, a second apart.
    let clock = ManualClock::new(at("2026-01-01T00:00:00Z"));
    let old: Arc<dyn RunStore> = store.with_clock(Arc::new(clock.clone()));
    let old_run = |key: AssetKey, p: Option<&'static str>, commit| {
        let (old, clock) = (old.clone(), clock.clone());
        async move {
            clock.advance(std::time::Duration::from_secs(1));
            ended_run(&old, &key, p, commit).await
        }
    };
    let (a, b, c, d) = (
        AssetKey::parse("a").unwrap(),
        AssetKey::parse("b").unwrap(),
        AssetKey::parse("c").unwrap(),
        AssetKey::parse("d").unwrap(),
    );
    // a: v0 then v1 published (v0 is pruned), v2 held back (kept).
    let (r_a0, a0) = old_run(a.clone(), None, Some((0, true, vec![]))).await;
    let (r_a1, a1) = old_run(a.clone(), None, Some((1, true, vec![]))).await;
    let (_, a2) = old_run(a.clone(), None, Some((2, false, vec![]))).await;
    // b[p]: v0, v1 (the latest published: kept), then a failure (the partition's failed state:
    // its run is kept).
    let (r_b0, b0) = old_run(b.clone(), Some("p"), Some((0, true, vec![]))).await;
    let (r_b1, b1) = old_run(b.clone(), Some("p"), Some((1, true, vec![]))).await;
    let (r_b2, _) = old_run(b.clone(), Some("p"), None).await;
    // c v0 is old and superseded by c v1, but d (recent) read c v0: kept.
    let (_, c0) = old_run(c.clone(), None, Some((0, true, vec![]))).await;
    let (_, c1) = old_run(c.clone(), None, Some((1, true, vec![]))).await;
    let read_c0 = UpstreamRead {
        key: c.clone(),
        partition: None,
        materialization_id: c0,
        delta_version: Some(0),
    };
    let (r_d, _) = ended_run(&store, &d, None, Some((0, true, vec![read_c0]))).await;
    // Ticks: the old one goes, the latest and the latest not fired by hand stay.
    for (t, status) in [
        ("2026-01-01T00:00:00Z", "launched"),
        ("2026-01-02T00:00:00Z", "launched"),
        ("2026-01-03T00:00:00Z", "fired"),
    ] {
        let tick = TickRecord {
            schedule: "nightly".into(),
            tick_at: t.into(),
            status: status.into(),
            run_id: None,
            reason: None,
            created_at: now(),
        };
        assert!(old.record_tick(&tick, None).await.unwrap());
    }

    // What the runs' agent steps paid: pruned with a pruned run, kept with a kept one.
    let whole = |k: &AssetKey| StepKey::whole(k.clone());
    store
        .add_run_spend(&r_a0, &whole(&a), 10, 0.5)
        .await
        .unwrap();
    store
        .add_run_spend(&r_d, &whole(&d), 7, 0.25)
        .await
        .unwrap();
    let latest_before = store.latest_materializations().await.unwrap();
    let outcomes_before = store.latest_step_outcomes(None).await.unwrap();
    let cutoff = "2026-06-01T00:00:00.000Z";
    let dry = store.prune(cutoff, true).await.unwrap();
    assert_eq!(
        store.get_run(r_a0.as_str()).await.unwrap().run_id,
        r_a0,
        "dry run"
    );
    let report = store.prune(cutoff, false).await.unwrap();
    assert_eq!(dry, report, "a dry run counts what the real one does");
    assert_eq!(
        (report.materializations, report.runs, report.ticks),
        (2, 2, 1),
        "{report:?}"
    );
    let spent = |r: RunId| {
        let (store, d) = (store.clone(), whole(&d));
        async move { store.add_run_spend(&r, &d, 0, 0.0).await.unwrap() }
    };
    assert_eq!(
        spent(r_a0.clone()).await,
        RunSpend::default(),
        "pruned with its run"
    );
    assert_eq!(
        spent(r_d.clone()).await,
        RunSpend {
            tokens: 7,
            cost: 0.25
        }
    );
    // Two runs' steps go (a v0's and b v0's); every old run's events go.
    assert_eq!(report.steps, 2);
    assert!(report.events >= 9 * 4, "{report:?}");

    // Pruned: a v0 and b v0, and their runs.
    assert!(store.materialization(a0.unwrap()).await.unwrap().is_none());
    assert!(store.materialization(b0.unwrap()).await.unwrap().is_none());
    assert!(store.get_run(r_a0.as_str()).await.is_err());
    assert!(store.get_run(r_b0.as_str()).await.is_err());
    // Kept: the latest published, the held back, what a kept one read, the failed state.
    for id in [a1, a2, b1, c0, c1] {
        assert!(store.materialization(id.unwrap()).await.unwrap().is_some());
    }
    assert!(store.get_run(r_a1.as_str()).await.is_ok());
    assert!(store.get_run(r_b1.as_str()).await.is_ok());
    assert!(store.get_run(r_b2.as_str()).await.is_ok());
    assert!(store.get_run(r_d.as_str()).await.is_ok());
    assert!(
        !store.events(&r_d, 0).await.unwrap().is_empty(),
        "recent events stay"
    );
    assert!(
        store.events(&r_a1, 0).await.unwrap().is_empty(),
        "old events go"
    );
    let latest_after = store.latest_materializations().await.unwrap();
    assert_eq!(
        latest_before
            .iter()
            .map(|(k, m)| (k.clone(), m.id))
            .collect::<std::collections::BTreeMap<_, _>>(),
        latest_after
            .iter()
            .map(|(k, m)| (k.clone(), m.id))
            .collect::<std::collections::BTreeMap<_, _>>()
    );
    assert_eq!(
        store.latest_step_outcomes(None).await.unwrap(),
        outcomes_before
    );
    assert_eq!(
        store.readers(&c, c0.unwrap()).await.unwrap().len(),
        1,
        "lineage of what stays"
    );
    assert_eq!(
        store.last_tick("nightly").await.unwrap().as_deref(),
        Some("2026-01-02T00:00:00Z")
    );
    assert_eq!(store.ticks(Some("nightly"), 10).await.unwrap().len(), 2);
    // Sequence numbers keep rising past everything pruned.
    let (_, a3) = ended_run(&store, &a, None, Some((3, true, vec![]))).await;
    let m = store.materialization(a3.unwrap()).await.unwrap().unwrap();
    let a2m = store.materialization(a2.unwrap()).await.unwrap().unwrap();
    assert!(m.m.seq > a2m.m.seq);
    // a v3 supersedes v1 and v2: the next prune takes them; then nothing is left.
    assert_eq!(
        store.prune(cutoff, false).await.unwrap().materializations,
        2
    );
    assert!(store.materialization(a2.unwrap()).await.unwrap().is_none());
    assert_eq!(
        store.prune(cutoff, false).await.unwrap(),
        PruneReport::default()
    );
}
