//! `assets events tail` prints every run's events in order; with `SPINE_EVENT_KEY` each carries an
//! HMAC-SHA256 signature, and `assets events verify` accepts the stream and names the first event that
//! was changed, is unsigned, or was signed with another key.

use crate::common::*;
use std::io::Write;
use std::process::Stdio;

fn verify(p: &Project, stream: &str, key: Option<&str>) -> (i32, String, String) {
    let envs: Vec<(&str, String)> = key
        .map(|k| vec![("SPINE_EVENT_KEY", k.to_string())])
        .unwrap_or_default();
    let mut c = assets_in(p.path(), &["events", "verify"], &envs);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn events_are_tailed_in_order_signed_and_verified() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    p.run(&["materialize", "--force"]).ok();
    let key = "k3y-for-events-0123";
    let tail = run_in_env(
        p.path(),
        &["events", "tail", "--json"],
        &[("SPINE_EVENT_KEY", key.to_string())],
    );
    tail.ok();
    let lines: Vec<serde_json::Value> = tail
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 10, "{}", tail.stdout);
    let ids: Vec<i64> = lines.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order");
    let runs: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 2, "both runs' events");
    assert!(lines
        .iter()
        .all(|e| e["sig"].as_str().is_some_and(|s| s.len() == 64)));
    assert!(lines.iter().any(|e| e["kind"] == "materialization"));
    assert!(
        !tail.stdout.contains(key) && !tail.stderr.contains(key),
        "the key is never printed"
    );

    let (code, out, _) = verify(&p, &tail.stdout, Some(key));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{} event(s) verified", lines.len())),
        "{out}"
    );
    // One message changed on the way.
    let mut changed = lines.clone();
    changed[3]["message"] = "nothing happened".into();
    let stream: String = changed.iter().map(|e| format!("{e}\n")).collect();
    let (code, _, err) = verify(&p, &stream, Some(key));
    assert_eq!(code, 1);
    assert!(err.contains(&format!("event {} (line 4)", ids[3])), "{err}");
    // Another key; no signature; no key at all.
    let (code, _, err) = verify(&p, &tail.stdout, Some("another-key-456"));
    assert_eq!(code, 1);
    assert!(
        err.contains("line 1") && err.contains("another key"),
        "{err}"
    );
    let unsigned = p.run(&["events", "tail", "--json"]).ok().stdout.clone();
    let (code, _, err) = verify(&p, &unsigned, Some(key));
    assert_eq!(code, 1);
    assert!(err.contains("unsigned"), "{err}");
    let (code, _, err) = verify(&p, &tail.stdout, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SPINE_EVENT_KEY"), "{err}");

    // From after an id, at most N.
    let page = p
        .run(&[
            "events",
            "tail",
            "--json",
            "--after",
            &ids[4].to_string(),
            "--limit",
            "2",
        ])
        .ok()
        .stdout
        .clone();
    let got: Vec<i64> = page
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, vec![ids[5], ids[6]]);
}
