//! `command` assets: the JSON-lines protocol, output formats, failures, retries, timeouts, cancellation.

use crate::common::*;

const WRITER: &str = r#"
import json, os, sys
out = os.environ["SPINE_OUTPUT_DIR"]
with open(os.path.join(out, "rows.csv"), "w") as f:
    f.write("id,name\n1,a\n2,b\n3,c\n")
print(json.dumps({"type": "log", "level": "info", "message": "hello from " + os.environ["SPINE_ASSET_KEY"]}))
print(json.dumps({"type": "metadata", "data": {"source": "test", "run": os.environ["SPINE_RUN_ID"]}}))
print(json.dumps({"type": "check", "name": "three_rows", "passed": True}))
print("plain text line")
"#;

#[test]
fn command_asset_writes_csv_reports_metadata_and_feeds_sql() {
    let p = Project::new(&[
        ("assets/gen.py", WRITER),
        ("assets/a.yaml", "key: raw/people\nkind: command\ncommand: [python3, gen.py]\n"),
        ("assets/b.yaml", "key: people_count\nkind: sql\nquery: SELECT COUNT(*) AS n, SUM(id) AS s FROM raw.people\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(status_of(&v, "raw/people"), "succeeded");
    let q = p.run(&["sql", "--json", "SELECT n, s FROM people_count"]);
    assert_eq!(q.json()[0]["n"], 3);
    assert_eq!(q.json()[0]["s"], 6);
    let m = p.run(&[
        "sql",
        "--json",
        "SELECT metadata FROM spine.materializations WHERE asset_key = 'raw/people'",
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(m.json()[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["source"], "test");
    let run_id = v["run_id"].as_str().unwrap();
    let logs = p.run(&["logs", run_id]);
    assert!(
        logs.stdout.contains("hello from raw/people"),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("plain text line"), "{}", logs.stdout);
    assert!(
        logs.stdout.contains("check three_rows passed"),
        "{}",
        logs.stdout
    );
    // Editing the script changes the code version.
    p.write("assets/gen.py", &format!("{WRITER}\n# changed\n"));
    let st = p.run(&["status", "--json", "raw/people"]);
    assert_eq!(st.json()[0]["freshness"]["state"], "stale");
}

#[test]
fn failing_command_fails_the_run_and_skips_downstream() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: bad\nkind: command\ncommand: [python3, -c, \"import sys; print('boom', file=sys.stderr); sys.exit(3)\"]\n"),
        ("assets/b.yaml", "key: after\nkind: sql\nquery: SELECT * FROM bad\n"),
        ("assets/c.yaml", "key: fine\nkind: sql\nquery: SELECT 1 AS v\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let v = r.json();
    assert_eq!(v["status"], "failed");
    assert_eq!(status_of(&v, "bad"), "failed");
    assert_eq!(status_of(&v, "after"), "skipped");
    assert_eq!(status_of(&v, "fine"), "succeeded");
    let bad = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "bad")
        .unwrap();
    let err = bad["error"].as_str().unwrap();
    assert!(
        err.contains("exited with 3") && err.contains("boom"),
        "{err}"
    );
    assert!(
        !p.path().join("warehouse/bad/_delta_log").exists(),
        "a failed step leaves no table"
    );
}

#[test]
fn failed_error_check_blocks_the_commit() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: checked\nkind: command\ncommand: [python3, -c, \"import os,json; open(os.environ['SPINE_OUTPUT_DIR']+'/x.jsonl','w').write('{\\\"v\\\": 1}\\\\n'); print(json.dumps({'type':'check','name':'positive','passed':False,'message':'v too small'}))\"]\n",
    )]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let err = r.json()["steps"][0]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("check 'positive' failed") && err.contains("v too small"),
        "{err}"
    );
    assert!(!p.path().join("warehouse/checked/_delta_log").exists());
}

#[test]
fn retries_with_backoff_then_succeeds() {
    let script = "import os\nif os.environ['SPINE_ATTEMPT'] == '1':\n    raise SystemExit('transient failure')\nopen(os.path.join(os.environ['SPINE_OUTPUT_DIR'], 'o.jsonl'), 'w').write('{\"ok\": true}\\n')\n";
    let p = Project::new(&[
        ("assets/flaky.py", script),
        ("assets/a.yaml", "key: flaky\nkind: command\ncommand: [python3, flaky.py]\nretries: 2\nretry_delay: 100ms\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.ok();
    let step = &r.json()["steps"][0];
    assert_eq!(step["status"], "succeeded");
    assert_eq!(step["attempts"], 2);
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    let logs = p.run(&["logs", &id]);
    assert!(
        logs.stdout.contains("attempt 1 failed (retrying in"),
        "{}",
        logs.stdout
    );
}

#[test]
fn a_retry_after_message_sets_the_least_wait_before_the_next_attempt() {
    // A rate-limited endpoint said "retry after 1.5 s": the retry waits that long, not the 10 ms
    // backoff.
    let script = "import os, json\nif os.environ['SPINE_ATTEMPT'] == '1':\n    print(json.dumps({'type': 'retry_after', 'seconds': 1.5}))\n    raise SystemExit('429 Too Many Requests')\nopen(os.path.join(os.environ['SPINE_OUTPUT_DIR'], 'o.jsonl'), 'w').write('{\"ok\": true}\\n')\n";
    let p = Project::new(&[
        ("assets/limited.py", script),
        ("assets/a.yaml", "key: limited\nkind: command\ncommand: [python3, limited.py]\nretries: 1\nretry_delay: 10ms\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.ok();
    let step = &r.json()["steps"][0];
    assert_eq!(step["status"], "succeeded", "{}", r.stdout);
    assert_eq!(step["attempts"], 2, "{}", r.stdout);
    let id = r.json()["run_id"].as_str().unwrap().to_string();
    let logs = p.run(&["logs", &id, "--json"]).ok().json();
    let waits: Vec<u64> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "step_attempt_failed")
        .filter_map(|e| e["data"]["retry_in_ms"].as_u64())
        .collect();
    assert_eq!(waits, vec![1500], "{logs}");
}

#[test]
fn a_retry_after_out_of_range_is_a_protocol_error() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: bad\nkind: command\ncommand: [sh, -c, 'echo \"{\\\"type\\\": \\\"retry_after\\\", \\\"seconds\\\": -1}\"; exit 1']\nretries: 3\nretry_delay: 10ms\n",
    )]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let step = &r.json()["steps"][0];
    assert_eq!(step["status"], "failed", "{}", r.stdout);
    // Permanent: not retried.
    assert_eq!(step["attempts"], 1, "{}", r.stdout);
    let error = step["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("retry_after seconds must be from 0 to 86400, got -1"),
        "{error}"
    );
}

#[test]
fn timeout_fails_the_step() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: slow\nkind: command\ncommand: [python3, -c, \"import time; time.sleep(30)\"]\ntimeout: 500ms\n",
    )]);
    let t = std::time::Instant::now();
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    assert!(
        t.elapsed().as_secs() < 20,
        "the timeout did not stop the command"
    );
    assert!(r.json()["steps"][0]["error"]
        .as_str()
        .unwrap()
        .contains("timed out after 0.5s"));
}

#[test]
fn no_output_and_unknown_format_are_clear_errors() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: nothing\nkind: command\ncommand: [python3, -c, \"pass\"]\n"),
        ("assets/b.yaml", "key: weird\nkind: command\ncommand: [python3, -c, \"import os; open(os.environ['SPINE_OUTPUT_DIR']+'/x.txt','w').write('hi')\"]\n"),
        ("assets/c.yaml", "key: missing_program\nkind: command\ncommand: [no-such-program-xyz]\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let v = r.json();
    let err = |k: &str| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        err("nothing").contains("wrote no output files"),
        "{}",
        err("nothing")
    );
    assert!(
        err("weird").contains("cannot tell the output format"),
        "{}",
        err("weird")
    );
    assert!(
        err("missing_program").contains("cannot start 'no-such-program-xyz'"),
        "{}",
        err("missing_program")
    );
}

#[test]
fn ctrl_c_cancels_and_leaves_state_consistent() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: quick\nkind: sql\nquery: SELECT 1 AS v\n"),
        ("assets/b.yaml", "key: slow\nkind: command\ncommand: [python3, -c, \"import time; print('started', flush=True); time.sleep(60)\"]\ndeps: [quick]\n"),
        ("assets/c.yaml", "key: after\nkind: sql\nquery: SELECT * FROM slow\n"),
    ]);
    let child = bin()
        .args(["materialize", "--json"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow step is running, then interrupt.
    wait_until_running(&p, "slow");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(status_of(&v, "quick"), "succeeded");
    assert_eq!(status_of(&v, "slow"), "cancelled");
    assert_eq!(status_of(&v, "after"), "cancelled");
    let runs = p.run(&["runs", "--json"]);
    assert_eq!(runs.json()[0]["status"], "cancelled");
    assert!(!p.path().join("warehouse/slow/_delta_log").exists());
    // The next run picks up where it left off: quick is fresh, the rest runs.
    p.write("assets/b.yaml", "key: slow\nkind: command\ncommand: [python3, -c, \"import os; open(os.environ['SPINE_OUTPUT_DIR']+'/o.jsonl','w').write('{\\\"v\\\": 1}\\\\n')\"]\ndeps: [quick]\n");
    let r = p.run(&["materialize", "--json"]);
    r.ok();
    assert_eq!(status_of(&r.json(), "quick"), "up_to_date");
    assert_eq!(status_of(&r.json(), "after"), "succeeded");
}

/// A command's declared permanent exit codes fail the step at once; other non-zero exits are retried.
#[test]
fn declared_permanent_exit_codes_are_not_retried() {
    let exit = |code: i32| {
        format!(
            "command: [python3, -c, \"import sys; sys.exit({code})\"]\npermanent_exit_codes: [3, 78]\nretries: 2\nretry_delay: 10ms\n"
        )
    };
    let p = Project::new(&[
        (
            "assets/a.yaml",
            &format!("key: bad_input\nkind: command\n{}", exit(3)),
        ),
        (
            "assets/b.yaml",
            &format!("key: flaky\nkind: command\n{}", exit(4)),
        ),
    ]);
    let v = p.run(&["materialize", "--json"]).json();
    let step = |key: &str| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    let (bad, flaky) = (step("bad_input"), step("flaky"));
    assert_eq!(bad["attempts"], 1, "{bad}");
    assert_eq!(bad["failure_class"], "permanent", "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("declared permanent"),
        "{bad}"
    );
    assert_eq!(flaky["attempts"], 3, "{flaky}");
    assert_eq!(flaky["failure_class"], "retryable", "{flaky}");
}

#[test]
fn an_impossible_permanent_exit_code_is_a_definition_error() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: odd\nkind: command\ncommand: [echo]\npermanent_exit_codes: [0]\n",
    )]);
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0206") && r.stderr.contains("permanent_exit_codes: 0"),
        "{}",
        r.stderr
    );
}

/// A command parks itself (`{"type": "wait"}`): nothing is committed, its downstream waits and the run
/// ends `waiting`; `assets signal` then `assets execute` run it again with the payload in
/// `SPINE_SIGNAL`, and the rest of the run follows.
#[test]
fn a_command_parks_until_signalled_and_resumes_with_the_payload() {
    let p = gated();
    let v = p.run(&["materialize", "--json"]).json();
    assert_eq!(v["status"], "waiting", "{v}");
    assert_eq!(status_of(&v, "gate"), "waiting");
    assert_eq!(status_of(&v, "after"), "pending");
    assert!(
        !p.path().join("warehouse/gate/_delta_log").exists(),
        "nothing committed"
    );
    let run = v["run_id"].as_str().unwrap().to_string();
    // Signalling a step that does not wait, or with a payload that is not JSON, is bad input.
    let r = p.run(&["signal", &run, "after"]);
    r.code(2);
    assert!(r.stderr.contains("E0408"), "{}", r.stderr);
    let r = p.run(&["signal", &run, "gate", "--payload", "{by: ana}"]);
    r.code(2);
    assert!(r.stderr.contains("E0409"), "{}", r.stderr);
    p.run(&["signal", &run, "gate", "--payload", r#"{"by": "ana"}"#])
        .code(0);
    let v = p.run(&["execute", &run, "--json"]).json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(status_of(&v, "gate"), "succeeded");
    assert_eq!(status_of(&v, "after"), "succeeded");
    let q = p
        .run(&["sql", "--json", "SELECT approved_by FROM after"])
        .json();
    assert_eq!(q[0]["approved_by"], "ana", "{q}");
}
