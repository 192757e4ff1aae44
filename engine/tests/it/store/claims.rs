//! Step claims: one holder per step key, leases, renewals, takeovers, claimed starts.

use super::*;

/// Claims on a step key: one holder at a time; renewals by the holder; a lease that ran out (on the
/// caller's clock) or a named dead owner can be taken over; release frees it; claims of two step keys
/// are independent.
pub async fn step_claims_have_one_holder_until_released_or_expired(store: Arc<dyn RunStore>) {
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
pub async fn claimed_start_is_atomic_with_the_claim(store: Arc<dyn RunStore>) {
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
pub async fn renewing_an_owners_claims_reports_the_ones_it_still_holds(store: Arc<dyn RunStore>) {
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
