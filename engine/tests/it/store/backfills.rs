//! Backfills: recorded whole with a queued run per chunk, runs added per chunk, progress read from
//! the steps of their runs, cancelled and resumed; the latest outcome of each step key.

use super::*;
use spine_engine::BackfillId;

fn planned(keys: &[StepKey]) -> PlannedRun {
    let id = RunId::new();
    PlannedRun {
        run: run(&id),
        steps: keys
            .iter()
            .enumerate()
            .map(|(i, k)| StepRecord::planned(&id, i as i64, k))
            .collect(),
    }
}

fn backfill(id: &BackfillId) -> BackfillRecord {
    BackfillRecord {
        backfill_id: id.clone(),
        selection: Some("events".into()),
        partitions: "2026-01-01..2026-01-04".into(),
        filter: None,
        per_run: 2,
        concurrency: Some(3),
        steps: 4,
        created_at: now(),
        cancelled_at: None,
    }
}

pub async fn backfills_record_chunks_runs_and_outcomes(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("events").unwrap();
    let day = |d: u32| StepKey {
        asset: key.clone(),
        partition: Some(PartitionKey(format!("2026-01-0{d}"))),
    };
    let (b1, b2) = (BackfillId::new(), BackfillId::new());
    let chunks = [planned(&[day(1), day(2)]), planned(&[day(3), day(4)])];
    store
        .create_backfill(&backfill(&b1), &chunks)
        .await
        .unwrap();
    store
        .create_backfill(&backfill(&b2), &[planned(&[day(1)])])
        .await
        .unwrap();
    let listed: Vec<BackfillId> = store
        .list_backfills(10)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.backfill_id)
        .collect();
    assert_eq!(listed, vec![b2.clone(), b1.clone()], "newest first");
    assert_eq!(store.list_backfills(1).await.unwrap().len(), 1);
    let short = unique_prefix(b1.as_str(), std::slice::from_ref(&b2.0));
    let got = store.get_backfill(short).await.unwrap();
    assert_eq!(got.backfill_id, b1);
    // A prefix both share names neither.
    let common = b1
        .as_str()
        .bytes()
        .zip(b2.as_str().bytes())
        .take_while(|(x, y)| x == y)
        .count();
    match store.get_backfill(&b1.as_str()[..common]).await {
        Err(spine_engine::error::StoreError::UnknownBackfill { candidates, .. }) => {
            assert_eq!(candidates.len(), 2)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (
            got.partitions.as_str(),
            got.per_run,
            got.concurrency,
            got.steps
        ),
        ("2026-01-01..2026-01-04", 2, Some(3), 4)
    );
    assert!(matches!(
        store.get_backfill("zzzz").await,
        Err(spine_engine::error::StoreError::UnknownBackfill { .. })
    ));

    // Each chunk's run is queued with its steps; the steps read back by chunk and position.
    let runs = store.backfill_runs(&b1).await.unwrap();
    let shape: Vec<(i64, i64, RunStatus)> =
        runs.iter().map(|(c, a, r)| (*c, *a, r.status)).collect();
    assert_eq!(
        shape,
        vec![(0, 0, RunStatus::Queued), (1, 0, RunStatus::Queued)]
    );
    assert_eq!(runs[0].2.run_id, chunks[0].run.run_id);
    let steps = store.backfill_steps(&b1).await.unwrap();
    let shape: Vec<(i64, StepKey, StepStatus)> = steps
        .iter()
        .map(|s| (s.chunk, s.step.clone(), s.status))
        .collect();
    assert_eq!(
        shape,
        vec![
            (0, day(1), StepStatus::Pending),
            (0, day(2), StepStatus::Pending),
            (1, day(3), StepStatus::Pending),
            (1, day(4), StepStatus::Pending),
        ]
    );

    // Chunk 0 runs: day 1 succeeds, day 2 fails.
    let r0 = &chunks[0].run.run_id;
    for (d, status) in [(1, StepStatus::Succeeded), (2, StepStatus::Failed)] {
        store
            .start_step(
                r0,
                &day(d),
                1,
                NewEvent::new(r0, None, EventKind::StepStarted, "info", "x"),
            )
            .await
            .unwrap();
        let outcome = StepOutcome {
            status,
            error: (status == StepStatus::Failed).then(|| "boom".to_string()),
            failure_class: None,
            reason: None,
            materialization: None,
            events: vec![],
        };
        store.finish_step(r0, &day(d), outcome).await.unwrap();
    }
    store
        .set_run_status(
            r0,
            RunStatus::Failed,
            Some("a step failed"),
            NewEvent::new(r0, None, EventKind::RunFailed, "error", "x"),
        )
        .await
        .unwrap();
    let outcomes = store.latest_step_outcomes(Some(&key)).await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[&day(1)].status, StepStatus::Succeeded);
    assert_eq!(outcomes[&day(2)].status, StepStatus::Failed);
    assert!(store
        .latest_step_outcomes(Some(&AssetKey::parse("other").unwrap()))
        .await
        .unwrap()
        .is_empty());

    // Cancel: the queued chunk's run is cancelled, the ended one left alone; resume clears it.
    let cancelled = store.cancel_backfill(&b1).await.unwrap();
    assert_eq!(cancelled, vec![chunks[1].run.run_id.clone()]);
    assert!(store
        .get_backfill(b1.as_str())
        .await
        .unwrap()
        .cancelled_at
        .is_some());
    assert_eq!(
        store.get_run(r0.as_str()).await.unwrap().status,
        RunStatus::Failed
    );
    assert!(store.cancel_backfill(&b1).await.unwrap().is_empty());
    store.uncancel_backfill(&b1).await.unwrap();
    assert!(store
        .get_backfill(b1.as_str())
        .await
        .unwrap()
        .cancelled_at
        .is_none());

    // A resume adds a second attempt of chunk 0 with only the failed partition; it is the latest
    // outcome once it ends.
    let retry = planned(&[day(2)]);
    store.add_backfill_run(&b1, 0, &retry).await.unwrap();
    let runs = store.backfill_runs(&b1).await.unwrap();
    let shape: Vec<(i64, i64)> = runs.iter().map(|(c, a, _)| (*c, *a)).collect();
    assert_eq!(shape, vec![(0, 0), (0, 1), (1, 0)]);
    let rr = &retry.run.run_id;
    store
        .start_step(
            rr,
            &day(2),
            1,
            NewEvent::new(rr, None, EventKind::StepStarted, "info", "x"),
        )
        .await
        .unwrap();
    let ok = StepOutcome {
        status: StepStatus::Succeeded,
        error: None,
        failure_class: None,
        reason: None,
        materialization: None,
        events: vec![],
    };
    store.finish_step(rr, &day(2), ok).await.unwrap();
    let outcomes = store.latest_step_outcomes(None).await.unwrap();
    assert_eq!(outcomes[&day(2)].status, StepStatus::Succeeded);
    let steps = store.backfill_steps(&b1).await.unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.chunk, s.attempt, s.status))
            .collect::<Vec<_>>(),
        vec![
            (0, 0, StepStatus::Succeeded),
            (0, 0, StepStatus::Failed),
            (0, 1, StepStatus::Succeeded),
            (1, 0, StepStatus::Pending),
            (1, 0, StepStatus::Pending),
        ]
    );
    assert_eq!(steps[1].error.as_deref(), Some("boom"));
}
