//! Agent checkpoints: stored per completed node under the work's key (step key, case, code version,
//! input versions), read back in order; a position keeps its first result; another code version or
//! other inputs see none of them; `gc` prunes the old ones and keeps the recent.

use super::*;
use spine_engine::clock::ManualClock;

fn key(case: &str, code: &str, inputs: &str) -> CheckpointKey {
    CheckpointKey {
        step: StepKey {
            asset: AssetKey::parse("agents/triage").unwrap(),
            partition: Some(PartitionKey("2026-12-01".into())),
        },
        case_id: case.into(),
        code_version: code.into(),
        inputs: inputs.into(),
    }
}

/// What a run's steps paid adds up per run (per step, then together); zero only reads; another run
/// has its own.
pub async fn run_spend_adds_up_per_run(store: Arc<dyn RunStore>) {
    let (r1, r2) = (RunId::new(), RunId::new());
    let a = StepKey::whole(AssetKey::parse("agents/a").unwrap());
    let b = StepKey {
        asset: AssetKey::parse("agents/b").unwrap(),
        partition: Some(PartitionKey("p1".into())),
    };
    let add = |r: &RunId, k: &StepKey, t: i64, c: f64| {
        let (store, r, k) = (store.clone(), r.clone(), k.clone());
        async move { store.add_run_spend(&r, &k, t, c).await.unwrap() }
    };
    assert_eq!(add(&r1, &a, 0, 0.0).await, RunSpend::default());
    assert_eq!(
        add(&r1, &a, 100, 0.5).await,
        RunSpend {
            tokens: 100,
            cost: 0.5
        }
    );
    assert_eq!(
        add(&r1, &b, 50, 0.25).await,
        RunSpend {
            tokens: 150,
            cost: 0.75
        }
    );
    assert_eq!(
        add(&r1, &a, 10, 0.125).await,
        RunSpend {
            tokens: 160,
            cost: 0.875
        }
    );
    assert_eq!(
        add(&r1, &b, 0, 0.0).await,
        RunSpend {
            tokens: 160,
            cost: 0.875
        }
    );
    assert_eq!(
        add(&r2, &a, 1, 0.0).await,
        RunSpend {
            tokens: 1,
            cost: 0.0
        }
    );
    assert_eq!(
        add(&r1, &a, 0, 0.0).await.tokens,
        160,
        "another run's is its own"
    );
}

pub async fn stored_per_node_and_resumed_by_the_same_work(store: Arc<dyn RunStore>) {
    let clock = ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    let old: Arc<dyn RunStore> = store.with_clock(Arc::new(clock.clone()));
    let k = key("ticket-1", "code-a", "in-1");
    assert!(old
        .put_checkpoint(&k, 0, "classify", &serde_json::json!({"label": "bug"}))
        .await
        .unwrap());
    assert!(old
        .put_checkpoint(
            &k,
            1,
            "draft",
            &serde_json::json!({"reply": "hi", "tokens": 12})
        )
        .await
        .unwrap());
    // A resumed step that did position 1 again does not overwrite the first (paid) result.
    assert!(!old
        .put_checkpoint(&k, 1, "draft", &serde_json::json!({"reply": "other"}))
        .await
        .unwrap());
    // The same node visited again (a loop) is a new position.
    assert!(old
        .put_checkpoint(&k, 2, "classify", &serde_json::json!({"label": "question"}))
        .await
        .unwrap());
    let got = store.checkpoints(&k).await.unwrap();
    let seen: Vec<(i64, &str, serde_json::Value)> = got
        .iter()
        .map(|c| (c.position, c.node.as_str(), c.delta.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (0, "classify", serde_json::json!({"label": "bug"})),
            (1, "draft", serde_json::json!({"reply": "hi", "tokens": 12})),
            (2, "classify", serde_json::json!({"label": "question"})),
        ]
    );
    assert_eq!(got[0].created_at, "2026-01-01T00:00:00.000Z");
    // Other work sees nothing: another case, code version, input versions or partition.
    for other in [
        key("ticket-2", "code-a", "in-1"),
        key("ticket-1", "code-b", "in-1"),
        key("ticket-1", "code-a", "in-2"),
        CheckpointKey {
            step: StepKey::whole(AssetKey::parse("agents/triage").unwrap()),
            ..k.clone()
        },
    ] {
        assert!(
            store.checkpoints(&other).await.unwrap().is_empty(),
            "{other:?}"
        );
    }
    // gc: the old ones go (a dry run only counts), a recent one stays.
    let recent = key("ticket-9", "code-a", "in-1");
    store
        .put_checkpoint(&recent, 0, "classify", &serde_json::json!({}))
        .await
        .unwrap();
    let cutoff = "2026-06-01T00:00:00.000Z";
    assert_eq!(store.prune(cutoff, true).await.unwrap().checkpoints, 3);
    assert_eq!(store.checkpoints(&k).await.unwrap().len(), 3);
    assert_eq!(store.prune(cutoff, false).await.unwrap().checkpoints, 3);
    assert!(store.checkpoints(&k).await.unwrap().is_empty());
    assert_eq!(store.checkpoints(&recent).await.unwrap().len(), 1);
}
