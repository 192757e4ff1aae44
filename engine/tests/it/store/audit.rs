//! The audit log: entries are appended in order, each chained to the one before; appends from many
//! writers at once never fork the chain; a changed or removed entry is named by `verify`.

use super::*;
use spine_engine::store::audit::{verify, GENESIS};
use spine_engine::store::NewAudit;

fn entry(action: &str, target: &str) -> NewAudit {
    NewAudit {
        actor: "ana".into(),
        origin: "cli".into(),
        host: "h1".into(),
        action: action.into(),
        target: target.into(),
        details: serde_json::json!({"args": ["materialize", target]}),
    }
}

pub async fn appended_in_a_chain_that_names_tampering(store: Arc<dyn RunStore>) {
    let first = store
        .append_audit(&entry("materialize", "raw/a"))
        .await
        .unwrap();
    assert_eq!((first.id, first.prev_hash.as_str()), (1, GENESIS));
    assert_eq!(first.hash, first.expected_hash());
    // Many writers at once: every append extends the last, none forks the chain.
    let mut writers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store
                .append_audit(&entry("cancel", &format!("run-{i}")))
                .await
                .unwrap()
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let all = store.audit_entries(0, 100).await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(verify(&all), Ok(()));
    assert_eq!(
        store.audit_entries(7, 100).await.unwrap().len(),
        2,
        "after an id"
    );
    assert_eq!(all[0].actor, "ana");
    assert_eq!(all[0].details, r#"{"args":["materialize","raw/a"]}"#);

    // Changed: named at that entry. Removed: named at the entry after the gap.
    let mut changed = all.clone();
    changed[4].actor = "mallory".into();
    assert_eq!(verify(&changed).unwrap_err().id, 5);
    let mut rehashed = changed.clone();
    rehashed[4].hash = rehashed[4].expected_hash();
    assert_eq!(
        verify(&rehashed).unwrap_err().id,
        6,
        "a re-hashed entry breaks the next link"
    );
    let mut removed = all.clone();
    removed.remove(2);
    assert_eq!(verify(&removed).unwrap_err().id, 4);
    let mut last_gone = all.clone();
    last_gone.truncate(8);
    assert_eq!(
        verify(&last_gone),
        Ok(()),
        "only what is stored can be checked"
    );
}
