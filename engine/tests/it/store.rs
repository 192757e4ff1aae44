//! Run-store behaviour. Written against the `RunStore` trait so the Postgres store (a later issue) runs
//! the same body.

use spine_engine::key::{AssetKey, PartitionKey, RunId, StepKey};
use spine_engine::store::*;
use spine_schemas::events::EventKind;
use std::sync::Arc;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn RunStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    (dir, open_store(&url).await.unwrap())
}

fn run(id: &RunId) -> RunRecord {
    RunRecord {
        run_id: id.clone(),
        status: RunStatus::Queued,
        selection: None,
        force: false,
        full_refresh: false,
        created_at: now(),
        started_at: None,
        finished_at: None,
        error: None,
        pid: None,
        host: None,
        lease_until_ms: None,
        launched_by: None,
        tags: Default::default(),
    }
}

fn step(id: &RunId, key: &AssetKey, pos: i64) -> StepRecord {
    StepRecord::planned(id, pos, &StepKey::whole(key.clone()))
}

fn mat(id: &RunId, key: &AssetKey, seq: i64, version: i64) -> NewMaterialization {
    NewMaterialization {
        asset_key: key.clone(),
        partition_key: None,
        run_id: id.clone(),
        step_id: key.to_string(),
        seq,
        delta_version: version,
        row_count: 7,
        schema: serde_json::json!([]),
        data_version: "d".into(),
        code_version: "c".into(),
        upstream: vec![UpstreamRead {
            key: AssetKey::parse("up").unwrap(),
            partition: None,
            materialization_id: Some(1),
            delta_version: Some(3),
        }],
        metadata: serde_json::json!({"k": 1}),
        published: true,
        checks: Vec::new(),
        columns: Vec::new(),
    }
}

async fn conformance(store: Arc<dyn RunStore>) {
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

#[tokio::test]
async fn sqlite_store_conformance() {
    let (_dir, store) = sqlite().await;
    conformance(store).await;
}

#[tokio::test]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/s/state.db", dir.path().display());
    let id = RunId::new();
    {
        let store = open_store(&url).await.unwrap();
        store.create_run(&run(&id), &[]).await.unwrap();
    }
    let store = open_store(&url).await.unwrap();
    assert_eq!(
        store.get_run(id.as_str()).await.unwrap().status,
        RunStatus::Queued
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_of_a_new_database_all_succeed() {
    // Several processes opening a fresh project at once race to switch it to WAL and migrate it.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let opens: Vec<_> = (0..6)
            .map(|_| tokio::spawn(open_store_owned(url.clone())))
            .collect();
        for o in opens {
            o.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

async fn open_store_owned(url: String) -> Result<(), String> {
    let store = open_store(&url).await.map_err(|e| e.to_string())?;
    store.list_runs(1).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn claim(run: &RunId, asset: &str, owner: &str, until: i64) -> StepClaim {
    StepClaim {
        step: StepKey::whole(AssetKey::parse(asset).unwrap()),
        run_id: run.clone(),
        owner: owner.into(),
        lease_until_ms: until,
    }
}

/// Claims on a step key: one holder at a time; renewals by the holder; a lease that ran out (on the
/// caller's clock) or a named dead owner can be taken over; release frees it; claims of two step keys
/// are independent.
#[tokio::test]
async fn step_claims_have_one_holder_until_released_or_expired() {
    let (_d, store) = sqlite().await;
    let (ra, rb) = (RunId::new(), RunId::new());
    let t0 = 1_000_000;
    let a = claim(&ra, "x", "host:1:a", t0 + 60_000);
    assert_eq!(
        store.claim_step(&a, t0, None).await.unwrap(),
        ClaimOutcome::Claimed
    );
    let b = claim(&rb, "x", "host:2:b", t0 + 90_000);
    match store.claim_step(&b, t0 + 30_000, None).await.unwrap() {
        ClaimOutcome::Held(h) => {
            assert_eq!(h.owner, "host:1:a");
            assert_eq!(h.run_id, ra);
            assert_eq!(h.lease_until_ms, t0 + 60_000);
        }
        other => panic!("b must not get a live claim: {other:?}"),
    }
    // Another step key is free.
    let other = claim(&rb, "y", "host:2:b", t0 + 90_000);
    assert_eq!(
        store.claim_step(&other, t0, None).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // The holder renews; b still cannot take it at the old deadline.
    assert!(store
        .renew_claim(&a.step, "host:1:a", t0 + 120_000)
        .await
        .unwrap());
    assert!(matches!(
        store.claim_step(&b, t0 + 61_000, None).await.unwrap(),
        ClaimOutcome::Held(_)
    ));
    // A named dead owner is taken over at once.
    assert_eq!(
        store
            .claim_step(&b, t0 + 61_000, Some("host:1:a"))
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(
        !store
            .renew_claim(&a.step, "host:1:a", t0 + 200_000)
            .await
            .unwrap(),
        "a lost it"
    );
    // a's release does not free b's claim; b's does.
    store.release_claim(&a.step, "host:1:a").await.unwrap();
    assert!(matches!(
        store.claim_step(&a, t0 + 62_000, None).await.unwrap(),
        ClaimOutcome::Held(_)
    ));
    store.release_claim(&b.step, "host:2:b").await.unwrap();
    // Expiry: b takes it once a's lease has run out, and not a millisecond before.
    let a_until = t0 + 62_000 + 60_000;
    let mut a2 = a.clone();
    a2.lease_until_ms = a_until;
    assert_eq!(
        store.claim_step(&a2, t0 + 62_000, None).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(matches!(
        store.claim_step(&b, a_until - 1, None).await.unwrap(),
        ClaimOutcome::Held(_)
    ));
    assert_eq!(
        store.claim_step(&b, a_until + 1, None).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // Settling a run releases all its claims.
    store.release_run_claims(&rb).await.unwrap();
    assert_eq!(
        store.claim_step(&a, t0, None).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_step(&claim(&ra, "y", "host:1:a", t0), t0, None)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
}

/// Starting a step under a claim is one transaction: refused while another owner holds the claim (the
/// step stays pending and no sequence number is spent), granted once it is released; ending the step
/// releases the claim.
#[tokio::test]
async fn claimed_start_is_atomic_with_the_claim() {
    let (_d, store) = sqlite().await;
    let key = AssetKey::parse("x").unwrap();
    let (ra, rb) = (RunId::new(), RunId::new());
    for r in [&ra, &rb] {
        store
            .create_run(&run(r), &[step(r, &key, 0)])
            .await
            .unwrap();
    }
    let a = claim(&ra, "x", "h:1:a", 10_000);
    let b = claim(&rb, "x", "h:2:b", 10_000);
    let ev = |r: &RunId| NewEvent::new(r, Some("x"), EventKind::StepStarted, "info", "start");
    let seq_a = store
        .start_claimed_step(&a, 1, ev(&ra), 0, None)
        .await
        .unwrap()
        .expect("a gets it");
    let held = store
        .start_claimed_step(&b, 1, ev(&rb), 0, None)
        .await
        .unwrap()
        .expect_err("b waits");
    assert_eq!(held.run_id, ra);
    assert_eq!(
        store.steps(&rb).await.unwrap()[0].status,
        StepStatus::Pending
    );
    let outcome = StepOutcome {
        failure_class: None,
        status: StepStatus::Failed,
        error: Some("boom".into()),
        reason: None,
        materialization: None,
        events: vec![],
    };
    store.finish_step(&ra, &a.step, outcome).await.unwrap();
    let seq_b = store
        .start_claimed_step(&b, 1, ev(&rb), 0, None)
        .await
        .unwrap()
        .expect("released with the step's end");
    assert_eq!(
        seq_b.previous, seq_a.seq,
        "the refused start spent no sequence number"
    );
    assert_eq!(
        store.steps(&rb).await.unwrap()[0].status,
        StepStatus::Running
    );
}

/// One statement renews every claim an owner holds and says which it still held; a claim another owner
/// took over is not renewed.
#[tokio::test]
async fn renewing_an_owners_claims_reports_the_ones_it_still_holds() {
    let (_d, store) = sqlite().await;
    let r = RunId::new();
    let (x, y) = (
        claim(&r, "x", "h:1:a", 1_000),
        claim(&r, "y", "h:1:a", 1_000),
    );
    for c in [&x, &y] {
        assert_eq!(
            store.claim_step(c, 0, None).await.unwrap(),
            ClaimOutcome::Claimed
        );
    }
    let thief = claim(&RunId::new(), "y", "h:2:b", 9_000);
    assert_eq!(
        store.claim_step(&thief, 0, Some("h:1:a")).await.unwrap(),
        ClaimOutcome::Claimed
    );
    let renewed = store.renew_claims("h:1:a", 5_000).await.unwrap();
    assert_eq!(renewed, vec![x.step.clone()]);
    // x's lease moved: another owner cannot take it at 4 s.
    let other = claim(&RunId::new(), "x", "h:3:c", 9_000);
    assert!(matches!(
        store.claim_step(&other, 4_000, None).await.unwrap(),
        ClaimOutcome::Held(_)
    ));
    assert!(store
        .renew_claims("nobody", 5_000)
        .await
        .unwrap()
        .is_empty());
}

/// Steps, sequence numbers, claims and materializations are per step key: one partition's do not
/// count for another's or for the whole asset's.
#[tokio::test]
async fn partitions_are_separate_step_keys() {
    let (_d, store) = sqlite().await;
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
async fn overtaken_records_are_not_recorded(store: Arc<dyn RunStore>) {
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

#[tokio::test]
async fn sqlite_overtaken_records_are_not_recorded() {
    let (_dir, store) = sqlite().await;
    overtaken_records_are_not_recorded(store).await;
}

/// Records a materialization of `key` at Delta `version` in run `r` (published or held back).
async fn record(
    store: &Arc<dyn RunStore>,
    r: &RunId,
    key: &AssetKey,
    version: i64,
    published: bool,
) -> i64 {
    let ev = |k| NewEvent::new(r, Some(key.as_str()), k, "info", "x");
    let started = store
        .start_step(
            r,
            &StepKey::whole(key.clone()),
            1,
            ev(EventKind::StepStarted),
        )
        .await
        .unwrap();
    let mut m = mat(r, key, started.seq, version);
    m.published = published;
    let outcome = StepOutcome {
        failure_class: None,
        status: StepStatus::Succeeded,
        error: None,
        reason: None,
        materialization: Some(m),
        events: vec![ev(EventKind::Materialization)],
    };
    store
        .finish_step(r, &StepKey::whole(key.clone()), outcome)
        .await
        .unwrap()
        .unwrap()
}

/// Promote and rollback: one version of a step key made live in one transaction, each change
/// recorded with its reason and actor.
async fn rollouts(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("evals/bot").unwrap();
    let mut ids = Vec::new();
    for (version, published) in [(0, true), (1, true), (2, false)] {
        let r = RunId::new();
        store
            .create_run(&run(&r), &[step(&r, &key, 0)])
            .await
            .unwrap();
        ids.push(record(&store, &r, &key, version, published).await);
    }
    let live =
        |ms: Vec<Materialization>| ms.iter().find(|m| m.m.published).map(|m| m.m.delta_version);
    assert_eq!(
        live(store.materializations(&key, 10).await.unwrap()),
        Some(1)
    );
    // Promote the held-back version 2.
    assert_eq!(
        store.make_live(ids[2], "fixed", "ana").await.unwrap(),
        (true, vec![])
    );
    assert_eq!(
        live(store.materializations(&key, 10).await.unwrap()),
        Some(2)
    );
    // Roll back to version 0: versions 1 and 2 are retracted.
    assert_eq!(
        store
            .make_live(ids[0], "tickets doubled", "bo")
            .await
            .unwrap(),
        (false, vec![ids[1], ids[2]])
    );
    assert_eq!(
        live(store.materializations(&key, 10).await.unwrap()),
        Some(0)
    );
    assert_eq!(
        store.latest_materializations().await.unwrap()[&StepKey::whole(key.clone())].id,
        ids[0]
    );
    let p: Vec<(i64, String, String, Option<String>)> = store
        .publications(&key)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.materialization_id, p.action, p.reason, p.actor))
        .collect();
    assert_eq!(
        p,
        [
            (ids[2], "publish".into(), "fixed".into(), Some("ana".into())),
            (
                ids[1],
                "retract".into(),
                "tickets doubled".into(),
                Some("bo".into())
            ),
            (
                ids[2],
                "retract".into(),
                "tickets doubled".into(),
                Some("bo".into())
            ),
        ]
    );
    // Nothing to change: nothing recorded.
    assert_eq!(
        store.make_live(ids[0], "again", "bo").await.unwrap(),
        (false, vec![])
    );
    assert_eq!(store.publications(&key).await.unwrap().len(), 3);
}

#[tokio::test]
async fn sqlite_rollouts() {
    let (_dir, store) = sqlite().await;
    rollouts(store).await;
}
