//! Automation conditions decided by the daemon on a manual clock, against the real store and Delta
//! tables: `on_missing` (whole and per partition, new partitions as they appear), `eager` (after its
//! upstream, again when the upstream changes, never while the upstream is missing), `on_cron` (once per
//! tick), and `explain` saying why.

use spine_engine::clock::ManualClock;
use spine_engine::kinds::KindRegistry;
use spine_engine::{CancellationToken, Engine, ExecuteOptions, MaterializeRequest};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const FILES: &[(&str, &str)] = &[
    ("raw.yaml", "key: raw\nkind: sql\nautomation: on_missing\nquery: SELECT 1 AS n\n"),
    ("total.yaml", "key: total\nkind: sql\nautomation: eager\nquery: SELECT SUM(n) AS s FROM raw\n"),
    ("stamp.yaml", "key: stamp\nkind: sql\nautomation: {on_cron: \"0 * * * *\"}\nquery: SELECT 1 AS v\n"),
    (
        "events.yaml",
        "key: events\nkind: sql\nautomation: {or: [on_missing, {and: [eager, {not: on_missing}]}]}\npartitions:\n  daily: {start: 2026-03-01}\nquery: SELECT 1 AS n\n",
    ),
];

async fn engine(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("spine.toml"), "[project]\nname = \"a\"\n").unwrap();
    for (f, t) in FILES {
        std::fs::write(dir.join("assets").join(f), t).unwrap();
    }
    Engine::load(dir, KindRegistry::builtin())
        .await
        .unwrap()
        .with_clock(clock.clone())
}

/// One daemon pass; the step keys its automation run covered (empty: none launched).
async fn pass(e: &Engine) -> Vec<String> {
    let p = e
        .daemon_pass(&ExecuteOptions::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert!(
        p.runs.iter().all(|(_, s)| s.as_str() == "succeeded"),
        "{p:?}"
    );
    match p.ticks.iter().find(|t| t.schedule == "automation") {
        None => Vec::new(),
        Some(t) => {
            let steps = e.store().steps(t.run_id.as_ref().unwrap()).await.unwrap();
            let mut ids: Vec<String> = steps.into_iter().map(|s| s.step_id).collect();
            ids.sort();
            ids
        }
    }
}

#[tokio::test]
async fn conditions_request_exactly_what_they_say_and_explain_why() {
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-03T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::new(start));
    let e = engine(dir.path(), &clock).await;
    let minute = Duration::from_secs(60);

    // Everything missing: on_missing and on_cron assets and both existing days; `total` waits for raw.
    assert_eq!(
        pass(&e).await,
        vec!["events[2026-03-01]", "events[2026-03-02]", "raw", "stamp"]
    );
    let (_, why) = e.explain_automation("total", None).await.unwrap();
    assert!(why.value, "{why:?}");
    clock.advance(minute);
    assert_eq!(pass(&e).await, vec!["total"]);
    clock.advance(minute);
    assert!(pass(&e).await.is_empty(), "nothing changed");
    let (_, why) = e.explain_automation("total", None).await.unwrap();
    assert_eq!((why.value, why.reason.as_str()), (false, "fresh"));
    let (_, why) = e.explain_automation("stamp", None).await.unwrap();
    assert!(
        !why.value && why.reason.contains("no tick since"),
        "{why:?}"
    );

    // An upstream changes: the eager downstream follows.
    let req = MaterializeRequest {
        selection: Some("raw".into()),
        force: true,
        ..Default::default()
    };
    e.materialize(req).await.unwrap();
    clock.advance(minute);
    assert_eq!(pass(&e).await, vec!["total"]);

    // The hour's tick: on_cron runs once.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(pass(&e).await, vec!["stamp"]);
    clock.advance(minute);
    assert!(pass(&e).await.is_empty());

    // A new day exists: only it is missing.
    clock.advance(Duration::from_secs(24 * 3600));
    let got = pass(&e).await;
    assert_eq!(got, vec!["events[2026-03-03]", "stamp"], "{got:?}");
    let (step, why) = e.explain_automation("events", None).await.unwrap();
    assert_eq!(step.to_string(), "events[2026-03-03]");
    assert!(
        !why.value && why.condition == "or" && why.children.len() == 2,
        "{why:?}"
    );
    let bad = e.explain_automation("raw", Some("x")).await;
    assert!(bad.is_ok(), "an unpartitioned asset ignores --partition");
    let none = e.explain_automation("nope", None).await.unwrap_err();
    assert!(none.to_string().contains("E0402"), "{none}");
}
