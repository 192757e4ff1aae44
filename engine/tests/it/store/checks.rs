//! Check results, held-back versions, publications and rollouts.

use super::*;
use spine_schemas::events::CheckSeverity;

/// Promote and rollback: one version of a step key made live in one transaction, each change
/// recorded with its reason and actor.
pub async fn rollouts(store: Arc<dyn RunStore>) {
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

fn outcome(name: &str, passed: bool, severity: CheckSeverity) -> CheckOutcome {
    CheckOutcome {
        name: name.into(),
        kind: "not_null".into(),
        severity,
        passed,
        failing_rows: if passed { 0 } else { 3 },
        samples: if passed {
            vec![]
        } else {
            vec![serde_json::json!({"id": 1})]
        },
        duration_ms: 4,
        error: None,
    }
}

/// Outcomes recorded with a materialization (by its run) and later (by `assets checks`), the latest
/// per check; versions held back by a failed check until published; a version found by its Delta
/// version, published or not.
pub async fn check_results_and_held_back_versions(store: Arc<dyn RunStore>) {
    let (key, other) = (
        AssetKey::parse("sales/orders").unwrap(),
        AssetKey::parse("sales/items").unwrap(),
    );
    let r = RunId::new();
    store
        .create_run(&run(&r), &[step(&r, &key, 0), step(&r, &other, 1)])
        .await
        .unwrap();
    // Version 0 published with a passing check, recorded by the run.
    let started = store
        .start_step(
            &r,
            &StepKey::whole(key.clone()),
            1,
            NewEvent::new(&r, Some(key.as_str()), EventKind::StepStarted, "info", "x"),
        )
        .await
        .unwrap();
    let mut m = mat(&r, &key, started.seq, 0);
    m.checks = vec![outcome("not_null_id", true, CheckSeverity::Error)];
    let outcome_of = |m| StepOutcome {
        status: StepStatus::Succeeded,
        error: None,
        failure_class: None,
        reason: None,
        materialization: Some(m),
        events: vec![],
    };
    let v0 = store
        .finish_step(&r, &StepKey::whole(key.clone()), outcome_of(m))
        .await
        .unwrap()
        .unwrap();
    let by_run = store.run_check_results(&r).await.unwrap();
    assert_eq!(by_run.len(), 1);
    assert_eq!(
        (
            by_run[0].materialization_id,
            by_run[0].run_id.as_ref(),
            by_run[0].outcome.passed
        ),
        (v0, Some(&r), true)
    );
    assert!(store.held_back().await.unwrap().is_empty());

    // Version 1 held back (unpublished), and one of another asset, also held back.
    let r2 = RunId::new();
    store
        .create_run(&run(&r2), &[step(&r2, &key, 0), step(&r2, &other, 1)])
        .await
        .unwrap();
    let v1 = record(&store, &r2, &key, 1, false).await;
    let o0 = record(&store, &r2, &other, 0, false).await;
    let held: Vec<i64> = store
        .held_back()
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(held, vec![v1, o0], "oldest first");
    let held_of: Vec<i64> = store
        .held_back_of(&key)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(held_of, vec![v1]);

    // Checks run later on v1: the latest outcome per check counts.
    store
        .record_checks(v1, &[outcome("not_null_id", false, CheckSeverity::Error)])
        .await
        .unwrap();
    store
        .record_checks(
            v1,
            &[
                outcome("not_null_id", true, CheckSeverity::Error),
                outcome("rows", false, CheckSeverity::Warn),
            ],
        )
        .await
        .unwrap();
    let mut latest: Vec<(String, bool, Option<RunId>)> = store
        .check_results(v1)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.outcome.name, c.outcome.passed, c.run_id))
        .collect();
    latest.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        latest,
        vec![
            ("not_null_id".into(), true, None),
            ("rows".into(), false, None)
        ]
    );
    let v0_checks = store.check_results(v0).await.unwrap();
    assert_eq!(
        v0_checks[0].outcome.samples,
        Vec::<serde_json::Value>::new()
    );
    assert!(store.run_check_results(&r2).await.unwrap().is_empty());

    // Found by Delta version, published or not; another version or partition is not it.
    let at = |v| store.materialization_at(&key, None, v);
    assert_eq!(at(1).await.unwrap().map(|m| m.id), Some(v1));
    assert_eq!(at(0).await.unwrap().map(|m| m.id), Some(v0));
    assert!(at(7).await.unwrap().is_none());
    assert!(store
        .materialization_at(&key, Some("2026-01-01"), 1)
        .await
        .unwrap()
        .is_none());

    // Publishing: once, recorded; it is then the latest and no longer held back.
    assert!(store.publish(v1, "reviewed").await.unwrap());
    assert!(!store.publish(v1, "again").await.unwrap());
    assert_eq!(
        store
            .latest_materialization(&StepKey::whole(key.clone()))
            .await
            .unwrap()
            .map(|m| m.id),
        Some(v1)
    );
    assert!(store.held_back_of(&key).await.unwrap().is_empty());
    let pubs = store.publications(&key).await.unwrap();
    assert_eq!(pubs.len(), 1);
    assert_eq!(
        (
            pubs[0].materialization_id,
            pubs[0].action.as_str(),
            pubs[0].reason.as_str()
        ),
        (v1, "publish", "reviewed")
    );
}
