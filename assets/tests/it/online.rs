//! `kind: online_snapshot` against a real Redis (started by `scripts/services.sh`, which `.ci/run`
//! calls; its URL in SPINE_TEST_REDIS_URL): a feature view's newest values per entity are served by
//! `assets features get`, a new version replaces them atomically (a concurrent reader never sees two
//! versions at once; a write that stopped half-way is never seen and is cleaned up), and a version
//! held back by a failed check never goes online.

use crate::common::*;
use std::process::Command;

fn server() -> Option<String> {
    match std::env::var("SPINE_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("SPINE_TEST_REDIS_URL is not set: .ci/run starts Redis with scripts/services.sh")
        }
        _ => {
            eprintln!("skipped: no Redis (run `eval \"$(scripts/services.sh)\"` first)");
            None
        }
    }
}

/// Events whose fares are all `fare`, for drivers d1 and d2, on two days.
fn events(fare: i64) -> String {
    format!(
        r#"key: events/trips
kind: sql
query: |
  SELECT * FROM (VALUES
    ('d1', CAST('2026-01-01T10:00:00' AS TIMESTAMP), {fare}),
    ('d1', CAST('2026-01-02T10:00:00' AS TIMESTAMP), {fare}),
    ('d2', CAST('2026-01-02T11:00:00' AS TIMESTAMP), {fare})
  ) AS t(driver, ts, fare)
"#
    )
}

const VIEW: &str = "key: features/drivers
kind: feature_view
from: events/trips
entities: [driver]
timestamp: ts
features:
  - {aggregations: [count], windows: [2d]}
  - {column: fare, aggregations: [max], windows: [1d]}
checks:
  - expression: fare_max_1d < 1000
";

/// A project whose online asset has a key of its own, so tests sharing the server do not meet.
fn project(url: &str) -> (Project, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key = format!("online/t{}_{nanos}", std::process::id());
    let online = format!(
        "key: {key}\nkind: online_snapshot\nfrom: features/drivers\nentities: [driver]\ntimestamp: ts\nurl_env: TEST_ONLINE_URL\n"
    );
    let p = Project::new(&[
        ("assets/events.yaml", &events(10)),
        ("assets/view.yaml", VIEW),
        ("assets/online.yaml", &online),
    ]);
    let _ = url;
    (p, key)
}

fn with_url(p: &Project, url: &str, args: &[&str]) -> Run {
    run_in_env(p.path(), args, &[("TEST_ONLINE_URL", url.to_string())])
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn fare(v: &serde_json::Value) -> Option<f64> {
    v["values"]["fare_max_1d"].as_f64()
}

#[test]
fn newest_values_are_served_and_replaced_atomically() {
    let Some(url) = server() else { return };
    let (p, key) = project(&url);
    p.run(&["check"]).ok();
    // Nothing online yet.
    with_url(&p, &url, &["features", "get", "features/drivers", "d1"]).code(1);
    with_url(&p, &url, &["materialize"]).ok();
    let got = with_url(
        &p,
        &url,
        &[
            "features",
            "get",
            "features/drivers",
            "d1",
            "d2",
            "d9",
            "--json",
        ],
    )
    .ok()
    .json();
    let rows = got["entities"].as_array().unwrap();
    // The newest cutoff is 2026-01-03: d1 has two events in two days, one in the last day.
    assert_eq!(rows[0]["values"]["count_2d"], 2, "{got}");
    assert_eq!(fare(&rows[0]), Some(10.0), "{got}");
    assert_eq!(rows[1]["values"]["count_2d"], 1, "{got}");
    assert_eq!(rows[2]["values"], serde_json::Value::Null, "{got}");
    assert_eq!(rows[0]["values"]["ts"], "2026-01-03T00:00:00Z", "{got}");
    let first = got["snapshot"].as_str().unwrap().to_string();

    // A write that stopped before its switch: never read, and removed by the next publication.
    let orphan = format!("spine:online:{key}:v:crashed-1");
    redis_cli(
        &url,
        &["HSET", &orphan, "[\"d1\"]", "{\"fare_max_1d\": 999}"],
    );
    let got = with_url(&p, &url, &["features", "get", &key, "d1", "--json"])
        .ok()
        .json();
    assert_eq!(fare(&got["entities"][0]), Some(10.0), "{got}");

    // New versions while a reader reads two entities at once: each read sees one version.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (dir, url, stop) = (p.path().to_path_buf(), url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = run_in_env(
                    &dir,
                    &["features", "get", "features/drivers", "d1", "d2", "--json"],
                    &[("TEST_ONLINE_URL", url.clone())],
                );
                if r.code == 0 {
                    reads.push(r.json());
                }
            }
            reads
        })
    };
    for fare in [20, 30, 40] {
        p.write("assets/events.yaml", &events(fare));
        with_url(&p, &url, &["materialize"]).ok();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads.len() >= 3, "{}", reads.len());
    let mut seen = std::collections::BTreeSet::new();
    for r in &reads {
        let (a, b) = (fare(&r["entities"][0]), fare(&r["entities"][1]));
        assert_eq!(a, b, "one read mixed two versions: {r}");
        seen.insert(a.unwrap() as i64);
    }
    assert!(
        seen.iter().all(|f| [10, 20, 30, 40].contains(f)),
        "{seen:?}"
    );
    let got = with_url(&p, &url, &["features", "get", "features/drivers", "d1"]);
    got.ok();
    assert!(got.stdout.contains("\"fare_max_1d\":40"), "{}", got.stdout);
    assert_ne!(got.stdout.lines().next().unwrap_or(""), first);
    // One hash left: the current one (the orphan and every replaced version are gone).
    let hashes = redis_cli(
        &url,
        &["--scan", "--pattern", &format!("spine:online:{key}:v:*")],
    );
    assert_eq!(hashes.lines().count(), 1, "{hashes}");

    // A version held back by its failed check never goes online.
    p.write("assets/events.yaml", &events(5000));
    let r = with_url(&p, &url, &["materialize"]);
    assert_ne!(r.code, 0, "the check fails: {}", r.stdout);
    let got = with_url(
        &p,
        &url,
        &["features", "get", "features/drivers", "d1", "--json"],
    )
    .ok()
    .json();
    assert_eq!(fare(&got["entities"][0]), Some(40.0), "{got}");
}

#[test]
fn bad_online_definitions_and_reads_exit_2() {
    let p = Project::new(&[
        ("assets/events.yaml", &events(10)),
        ("assets/view.yaml", VIEW),
        (
            "assets/online.yaml",
            "key: online/drivers\nkind: online_snapshot\nfrom: features/drivers\nentities: [rider]\ntimestamp: ts\n",
        ),
    ]);
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0262")
            && r.stderr.contains("no column 'rider'")
            && r.stderr.contains("assets/online.yaml"),
        "{}",
        r.stderr
    );
    p.write(
        "assets/online.yaml",
        "key: online/drivers\nkind: online_snapshot\nfrom: features/drivers\nentities: [driver]\ntimestamp: ts\nurl_env: NO_SUCH_VAR_FOR_SPINE\n",
    );
    p.run(&["check"]).ok();
    let r = p.run(&["features", "get", "features/drivers", "d1"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0424") && r.stderr.contains("NO_SUCH_VAR_FOR_SPINE is not set"),
        "{}",
        r.stderr
    );
    let r = p.run(&["features", "get", "events/trips", "d1"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0424") && r.stderr.contains("not served online"),
        "{}",
        r.stderr
    );
    let r = p.run(&["features", "get", "features/driver", "d1"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0402") && r.stderr.contains("features/drivers"),
        "{}",
        r.stderr
    );
}
