//! Faults between Spine and its S3 warehouse, through a TCP proxy in front of the real server: a
//! throttled server (`503 SlowDown`) is retried with backoff and the run succeeds without a step
//! retry; a server that goes away for seconds in the middle of a large write is ridden out by the
//! client's retries; one that stays away longer than the retries last fails the step with the storage
//! error and leaves no partial commit visible, and the next run writes the table, which delta-rs'
//! Python binding reads whole.

use crate::common::*;
use crate::s3_support::proxy::Proxy;
use crate::s3_support::*;
use std::time::{Duration, Instant};

#[test]
fn a_throttled_server_is_retried_with_backoff() {
    let Some(endpoint) = server() else { return };
    let b = bucket(&endpoint);
    let proxy = Proxy::start(&endpoint);
    let p = Project::new(&[
        ("spine.toml", &toml(&b)),
        (
            "assets/t.yaml",
            "key: t\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, 1000)\n",
        ),
    ]);
    let env = [("SPINE_TEST_S3_ENDPOINT", proxy.endpoint.clone())];
    proxy.throttle(4);
    let v = run_in_env(p.path(), &["materialize", "--json"], &env)
        .ok()
        .json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(proxy.throttled(), 4, "the server shed four requests");
    let attempts = run_in_env(
        p.path(),
        &["sql", "--json", "SELECT MAX(attempt) AS a FROM spine.steps"],
        &env,
    )
    .ok()
    .json();
    assert_eq!(
        attempts[0]["a"], 1,
        "retried by the S3 client, not by a step retry"
    );
    let n = run_in_env(
        p.path(),
        &["sql", "--json", "SELECT COUNT(*) AS n FROM t"],
        &env,
    )
    .ok()
    .json();
    assert_eq!(n[0]["n"], 1000);
}

/// Materializes a ~40 MB asset through a proxy that takes the server away for `outage` once 8 MB are
/// on their way; returns the proxy's endpoint, the bucket, the project and the run's JSON.
fn write_through_an_outage(
    extra_options: &str,
    outage: Duration,
) -> Option<(String, String, Project, serde_json::Value)> {
    let endpoint = server()?;
    let b = bucket(&endpoint);
    let proxy = Proxy::start(&endpoint);
    let p = Project::new(&[
        ("spine.toml", &format!("{}{extra_options}", toml(&b))),
        (
            "assets/big.yaml",
            &format!(
                "key: big\nkind: sql\nquery: SELECT value AS id, sha256(CAST(value AS VARCHAR)) AS h, \
                 random() AS r FROM generate_series(1, {ROWS})\n"
            ),
        ),
    ]);
    let child = bin()
        .args(["materialize", "--json"])
        .current_dir(p.path())
        .env_remove("SPINE_STATE_URL")
        .env_remove("SPINE_WAREHOUSE_URL")
        .env("SPINE_TEST_S3_ENDPOINT", &proxy.endpoint)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start assets materialize");
    let mut child = child;
    // Take the server away once part of the data is on its way, while the run is still writing.
    let start = Instant::now();
    while proxy.bytes_to_server() < 8 * 1024 * 1024 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the write never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the cut"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.down();
    std::thread::sleep(outage);
    proxy.up();
    let out = child.wait_with_output().expect("wait for the run");
    let first = String::from_utf8_lossy(&out.stdout).to_string();
    let status: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}), exit {:?}: {first}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Some((proxy.endpoint.clone(), b, p, status))
}

const ROWS: i64 = 3_000_000;

fn history(p: &Project, via: &str) -> serde_json::Value {
    run_in_env(
        p.path(),
        &["history", "big", "--json"],
        &[("SPINE_TEST_S3_ENDPOINT", via.to_string())],
    )
    .ok()
    .json()
}

/// Every row, read by delta-rs' Python binding straight from the server.
fn read_whole(b: &str) {
    let endpoint = server().expect("server");
    let read = python_json(READ, &[endpoint, format!("s3://{b}/wh/big")]);
    assert_eq!(
        (&read["version"], &read["rows"]),
        (&0.into(), &ROWS.into()),
        "{read}"
    );
}

#[test]
fn a_short_outage_mid_write_is_ridden_out() {
    let Some((via, b, p, status)) = write_through_an_outage("", Duration::from_secs(3)) else {
        return;
    };
    // The S3 client's retries (from half a second, backing off) outlast three seconds.
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(status["steps"][0]["attempts"], 1, "{status}");
    assert_eq!(history(&p, &via).as_array().unwrap().len(), 1);
    read_whole(&b);
}

#[test]
fn a_long_outage_mid_write_fails_the_step_and_leaves_no_partial_commit() {
    // Two retries cannot outlast six seconds: the step fails.
    let Some((via, b, p, status)) =
        write_through_an_outage("max_retries = \"2\"\n", Duration::from_secs(6))
    else {
        return;
    };
    assert_eq!(status["status"], "failed", "{status}");
    let error = status["steps"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("S3") && error.contains("retries"),
        "{status}"
    );
    // Nothing is visible: no version of the table, for Spine or for another reader.
    assert_eq!(
        history(&p, &via),
        serde_json::json!([]),
        "no partial commit"
    );
    // The server is back: the next run writes the whole table.
    let again = run_in_env(
        p.path(),
        &["materialize", "--json"],
        &[("SPINE_TEST_S3_ENDPOINT", via.clone())],
    )
    .ok()
    .json();
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(history(&p, &via).as_array().unwrap().len(), 1);
    read_whole(&b);
}
