//! Operator control of runs from the CLI: `assets cancel` of a queued run (at once) and of a running
//! one (its executor, in another process, stops the step before its commit), and `assets rerun` from
//! the failure (only the steps that did not succeed) or of every step. Bad requests are E0421/E0422
//! with exit 2, and change nothing.

use crate::common::*;

fn run_json(p: &Project, id: &str) -> serde_json::Value {
    p.run(&["run", id, "--json"]).ok().json()
}

fn run_steps(v: &serde_json::Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step_id"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn rerun_from_failure_runs_only_what_did_not_succeed() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: first\nkind: sql\nquery: SELECT 1 AS v\n"),
        // Fails while the marker file exists.
        ("assets/b.yaml", "key: middle\nkind: command\ncommand: [python3, -c, \"import os,sys; sys.exit(3) if os.path.exists('broken') else open(os.environ['SPINE_OUTPUT_DIR']+'/o.jsonl','w').write('{\\\"v\\\": 2}\\\\n')\"]\ndeps: [first]\n"),
        ("assets/broken", ""),
        ("assets/c.yaml", "key: last\nkind: sql\nquery: SELECT v + 1 AS v FROM middle\n"),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let failed = r.json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(status_of(&r.json(), "middle"), "failed");
    assert_eq!(status_of(&r.json(), "last"), "skipped");

    p.remove("assets/broken");
    let again = p.run(&["rerun", &failed, "--json"]);
    again.ok();
    let v = again.json();
    assert_eq!(v["status"], "succeeded", "{v}");
    // `first` succeeded before: it is not part of the new run.
    assert_eq!(
        step_statuses(&v),
        vec![
            ("middle".to_string(), "succeeded".to_string()),
            ("last".to_string(), "succeeded".to_string())
        ]
    );
    let rerun = v["run_id"].as_str().unwrap().to_string();
    assert_ne!(rerun, failed);
    let log = p.run(&["logs", &rerun]).ok().stdout.clone();
    assert!(
        log.contains(&format!("re-execution of run {failed}")),
        "{log}"
    );
    let q = p.run(&["sql", "--json", "SELECT v FROM last"]).ok().json();
    assert_eq!(q[0]["v"], 3);

    // Nothing failed in the re-run: from its failure there is nothing to do (E0422, exit 2).
    let none = p.run(&["rerun", &rerun]);
    none.code(2);
    assert!(
        none.stderr.contains("E0422") && none.stderr.contains("--all"),
        "{}",
        none.stderr
    );
    // --all records every step of it again; --queue leaves it for `execute`.
    let all = p.run(&["rerun", &failed, "--all", "--queue", "--json"]);
    all.ok();
    assert_eq!(all.json()["status"], "queued");
    assert_eq!(
        all.json()["steps"],
        serde_json::json!(["first", "middle", "last"])
    );
    let queued = all.json()["run_id"].as_str().unwrap().to_string();
    // A queued run cannot be re-run yet.
    let early = p.run(&["rerun", &queued]);
    early.code(2);
    assert!(
        early.stderr.contains("E0422") && early.stderr.contains("queued"),
        "{}",
        early.stderr
    );
}

#[test]
fn cancel_of_a_queued_run_is_immediate_and_final() {
    let p = diamond();
    let q = p.run(&["materialize", "--queue", "--json"]);
    q.ok();
    let id = q.json()["run_id"].as_str().unwrap().to_string();
    let c = p.run(&["cancel", &id, "--json"]);
    c.ok();
    assert_eq!(c.json()["outcome"], "cancelled");
    let v = run_json(&p, &id);
    assert_eq!(v["run"]["status"], "cancelled");
    assert!(run_steps(&v).iter().all(|(_, s)| s == "cancelled"), "{v}");
    // Nothing runs it afterwards, and a second cancel says it has ended.
    let e = p.run(&["execute", &id]);
    e.code(2);
    assert!(e.stderr.contains("E0407"), "{}", e.stderr);
    let again = p.run(&["cancel", &id]);
    again.code(2);
    assert!(
        again.stderr.contains("E0421") && again.stderr.contains("cancelled"),
        "{}",
        again.stderr
    );
    assert!(!p.path().join("warehouse/raw/a/_delta_log").exists());
    // A cancelled run can be re-run: every step of it did not succeed.
    let r = p.run(&["rerun", &id, "--json"]);
    r.ok();
    assert_eq!(step_statuses(&r.json()).len(), 4);
}

#[test]
fn cancel_of_a_running_run_stops_its_executor_in_another_process() {
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
    wait_until_running(&p, "slow");
    let id = p.run(&["runs", "--json"]).ok().json()[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Running: it cannot be re-run yet.
    let early = p.run(&["rerun", &id]);
    early.code(2);
    assert!(
        early.stderr.contains("E0422") && early.stderr.contains("running"),
        "{}",
        early.stderr
    );
    let started = std::time::Instant::now();
    let c = p.run(&["cancel", &id[..8], "--json"]);
    c.ok();
    assert_eq!(c.json()["outcome"], "cancel_requested");
    let out = child.wait_with_output().unwrap();
    // The step sleeps 60 s: the executor stopped it on the request, not at its end.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
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
    assert!(!p.path().join("warehouse/slow/_delta_log").exists());
    let log = p.run(&["logs", &id]).ok().stdout.clone();
    assert!(log.contains("cancel requested"), "{log}");
}
