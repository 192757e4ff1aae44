//! Concurrency: what one writer at a time gave SQLite for free, asked of every backend — unique
//! sequence numbers, a tailing reader that passes over no event, records that follow sequence
//! numbers when many attempts finish at once.

use super::*;

/// Sequence numbers of one step key started by many runs at once are all different and each above
/// the last one allocated before it (one atomic upsert per start, whatever the backend).
pub async fn sequence_numbers_are_unique_under_concurrency(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("hot").unwrap();
    let mut starts = Vec::new();
    for _ in 0..24 {
        let r = RunId::new();
        store
            .create_run(&run(&r), &[step(&r, &key, 0)])
            .await
            .unwrap();
        let (s, k) = (store.clone(), key.clone());
        starts.push(tokio::spawn(async move {
            let ev = NewEvent::new(&r, None, EventKind::StepStarted, "info", "x");
            s.start_step(&r, &StepKey::whole(k), 1, ev).await
        }));
    }
    let mut seqs = Vec::new();
    for s in starts {
        let a = s.await.unwrap().expect("a concurrent start fails");
        assert!(a.seq > a.previous);
        seqs.push(a.seq);
    }
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "{seqs:?}");
    // The next start is above them all.
    let r = RunId::new();
    store
        .create_run(&run(&r), &[step(&r, &key, 0)])
        .await
        .unwrap();
    let ev = NewEvent::new(&r, None, EventKind::StepStarted, "info", "x");
    let next = store
        .start_step(&r, &StepKey::whole(key.clone()), 1, ev)
        .await
        .unwrap();
    assert_eq!(next.previous, *unique.last().unwrap());
    assert!(next.seq > next.previous);
}

/// A reader tailing a run's events by id (`logs --follow`, the UI) sees every event exactly once
/// while many writers append at once: an event is never committed behind an id the reader has
/// already passed.
pub async fn tailing_events_by_id_skips_none(store: Arc<dyn RunStore>) {
    let r = RunId::new();
    store.create_run(&run(&r), &[]).await.unwrap();
    let (writers, each) = (8, 150);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (s, r, done) = (store.clone(), r.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let ev = NewEvent::new(&r, None, EventKind::Log, "info", format!("w{w} e{i}"));
                s.append_events(&[ev]).await.unwrap();
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
        let page = store.events_page(&r, after, 1000).await.unwrap();
        if let Some(last) = page.last() {
            after = last.id;
        }
        seen.extend(page.into_iter().map(|e| e.event.message));
        if finished && store.events_page(&r, after, 1).await.unwrap().is_empty() {
            break;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.events(&r, 0).await.unwrap().len();
    assert_eq!(all, writers * each + 1, "run_queued and every append");
    assert_eq!(
        seen.len(),
        all,
        "the tailing reader passed over an event committed late"
    );
    // Every run's events, in id order: another run's are there too.
    let r2 = RunId::new();
    store.create_run(&run(&r2), &[]).await.unwrap();
    let ev = NewEvent::new(&r2, None, EventKind::Log, "info", "other run");
    store.append_events(&[ev]).await.unwrap();
    let all = store.events_since(0, i64::MAX).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "in id order");
    let mine = all.iter().filter(|e| e.event.run_id == r.as_str()).count();
    assert_eq!(mine, writers * each + 1);
    assert_eq!(
        all.last().map(|e| e.event.message.as_str()),
        Some("other run")
    );
    let first_two = store.events_since(all[0].id, 2).await.unwrap();
    assert_eq!(
        first_two.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[1].id, all[2].id]
    );
}

/// Records of one step key follow its sequence numbers even when many attempts finish at once (a
/// dead run's commit settled while newer attempts finish): in id order, their sequence numbers rise.
pub async fn concurrent_finishes_keep_records_in_sequence(store: Arc<dyn RunStore>) {
    let key = AssetKey::parse("contended").unwrap();
    let whole = StepKey::whole(key.clone());
    let mut started = Vec::new();
    for _ in 0..16 {
        let r = RunId::new();
        store
            .create_run(&run(&r), &[step(&r, &key, 0)])
            .await
            .unwrap();
        let ev = NewEvent::new(&r, None, EventKind::StepStarted, "info", "x");
        let s = store.start_step(&r, &whole, 1, ev).await.unwrap();
        started.push((r, s.seq));
    }
    // Finish in an order unrelated to the sequence numbers, all at once.
    started.reverse();
    started.swap(3, 11);
    let tasks: Vec<_> = started
        .into_iter()
        .enumerate()
        .map(|(i, (r, seq))| {
            let (s, key, whole) = (store.clone(), key.clone(), whole.clone());
            tokio::spawn(async move {
                let outcome = StepOutcome {
                    status: StepStatus::Succeeded,
                    error: None,
                    failure_class: None,
                    reason: None,
                    materialization: Some(mat(&r, &key, seq, i as i64)),
                    events: vec![],
                };
                s.finish_step(&r, &whole, outcome).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut records = store.materializations(&key, 100).await.unwrap();
    records.sort_by_key(|m| m.id);
    let seqs: Vec<i64> = records.iter().map(|m| m.m.seq).collect();
    assert!(!seqs.is_empty());
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "a record behind a newer one: {seqs:?}"
    );
}
