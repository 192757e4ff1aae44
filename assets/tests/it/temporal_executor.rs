//! Spine's steps as Temporal activities (`[executor] kind = "temporal"`) against the real dev server
//! (`scripts/services.sh temporal`): examples/shop is materialized through two `assets worker
//! --temporal` processes, one of them killed with SIGKILL while it holds a step whose Delta commit
//! has landed. Temporal delivers that step's activity to the other worker once the killed one's
//! heartbeat runs out; it re-claims the step and records the landed commit instead of computing it
//! again, and the run succeeds with exactly one commit per step in every table.

use crate::common::*;
use crate::workers::commits;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The step the first worker stops at, after its commit and before the store records it.
const HUNG: &str = "stg/orders";

fn log(dir: &Path, name: &str) -> (std::fs::File, std::path::PathBuf) {
    let path = dir.join(name);
    (std::fs::File::create(&path).unwrap(), path)
}

fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A `--temporal` worker writing to `logs/NAME.{out,err}`.
fn worker(
    p: &Path,
    logs: &Path,
    name: &str,
    envs: &[(&str, String)],
) -> (Child, std::path::PathBuf) {
    let (out, _) = log(logs, &format!("{name}.out"));
    let (err, err_path) = log(logs, &format!("{name}.err"));
    let child = crate::workers::worker_to(
        p,
        &["--temporal", "-c", "2", "--poll", "100ms"],
        envs,
        move || Stdio::from(out),
        move || Stdio::from(err),
    );
    (child, err_path)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_shop_runs_on_two_temporal_workers_one_killed_with_exactly_one_commit_per_step() {
    let Some((address, _python, cli)) = crate::temporal::server() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Temporal server: .ci/run starts one with scripts/services.sh"
        );
        eprintln!("skipped: no Temporal server (eval \"$(scripts/services.sh temporal)\")");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("shop");
    crate::interop::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop"),
        &p,
    );
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let queue = format!("spine-exec-{}", std::process::id());
    let mut toml = std::fs::read_to_string(p.join("spine.toml")).unwrap();
    toml.push_str(&format!(
        "\n[executor]\nkind = \"temporal\"\naddress = \"${{env:TEST_TEMPORAL_ADDRESS}}\"\ntask_queue = \"{queue}\"\nheartbeat_timeout = \"2s\"\n"
    ));
    std::fs::write(p.join("spine.toml"), toml).unwrap();
    let envs = vec![
        ("TEST_TEMPORAL_ADDRESS", address.clone()),
        ("SPINE_VAR_ORDERS", "20000".to_string()),
        ("SPINE_VAR_CUSTOMERS", "2000".to_string()),
    ];
    let mut faulty = envs.clone();
    faulty.push(("SPINE_FAULT", format!("hang_after_commit:{HUNG}")));

    // Worker A stops for good right after stg/orders' commit; the run waits on it.
    let (mut a, a_err) = worker(&p, &logs, "a", &faulty);
    let mut materialize = assets_in(&p, &["materialize", "--json"], &envs);
    let (m_out, m_out_path) = log(&logs, "materialize.out");
    let (m_err, m_err_path) = log(&logs, "materialize.err");
    let mut materialize = materialize
        .stdout(Stdio::from(m_out))
        .stderr(Stdio::from(m_err))
        .spawn()
        .unwrap();
    wait_for("worker A stops after its commit", 240, || {
        read(&a_err).contains("SPINE_FAULT: hanging")
    });
    assert_eq!(commits(&p, HUNG), 1, "its commit landed");
    // Worker B joins; A is killed mid-step (no cleanup, no answer to Temporal).
    let (mut b, b_err) = worker(&p, &logs, "b", &envs);
    let b_pid = b.id();
    std::thread::sleep(Duration::from_millis(500));
    a.kill().unwrap();
    a.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = materialize.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = materialize.kill();
            let _ = b.kill();
            panic!(
                "the run never ended\nmaterialize: {}\nB: {}",
                read(&m_err_path),
                read(&b_err)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = b.kill();
    let _ = b.wait();
    let report: serde_json::Value = serde_json::from_str(read(&m_out_path).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", read(&m_out_path), read(&m_err_path)));
    assert!(status.success(), "{report}\n{}", read(&m_err_path));
    assert_eq!(report["status"], "succeeded", "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.len() >= 12, "{report}");
    assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{report}");

    // The hung step was re-claimed by B and recorded from its landed commit, not recomputed.
    assert_eq!(commits(&p, HUNG), 1, "{HUNG} committed once");
    let q = |sql: &str| run_in_env(&p, &["sql", "--json", sql], &envs).ok().json();
    let reclaimed = q(&format!(
        "SELECT message FROM spine.events WHERE step_id = '{HUNG}' AND message LIKE '%re-claimed by%'"
    ));
    let msg = reclaimed[0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains(&format!(":{b_pid}:")),
        "re-claimed by worker B: {reclaimed}"
    );
    let hung = q(&format!(
        "SELECT status, attempt FROM spine.steps WHERE step_id = '{HUNG}'"
    ));
    assert_eq!(
        hung,
        serde_json::json!([{"status": "succeeded", "attempt": 1}])
    );

    // Exactly one commit per step: every commit in a table is the version some step recorded
    // (partitions of one table waiting side by side share a commit), and no step has two.
    let mats = q(
        "SELECT asset_key, COUNT(DISTINCT delta_version) AS n FROM spine.materializations WHERE delta_version >= 0 GROUP BY asset_key ORDER BY asset_key",
    );
    let mats = mats.as_array().unwrap();
    assert!(mats.len() >= 12, "{mats:?}");
    for m in mats {
        let key = m["asset_key"].as_str().unwrap();
        assert_eq!(
            commits(&p, key) as i64,
            m["n"].as_i64().unwrap(),
            "{key}: every commit is a recorded step's"
        );
    }
    let per_step = q(
        "SELECT step_id, COUNT(*) AS n FROM spine.materializations GROUP BY step_id HAVING COUNT(*) > 1",
    );
    assert_eq!(
        per_step,
        serde_json::json!([]),
        "one materialization per step"
    );
    // Every step was an activity on the task queue, answered with how the step ended; the hung
    // step's was delivered twice: to A, then — its heartbeat gone — to B.
    let run_id = report["run_id"].as_str().unwrap();
    let described = crate::temporal::cli(
        &cli,
        &address,
        &[
            "activity",
            "describe",
            "--activity-id",
            &format!("spine:{run_id}:{HUNG}"),
        ],
    );
    let info = &described["info"];
    assert_eq!(info["attempt"], 2, "{described}");
    assert_eq!(
        info["lastFailure"]["timeoutFailureInfo"]["timeoutType"], "TIMEOUT_TYPE_HEARTBEAT",
        "{described}"
    );
    let last = info["lastWorkerIdentity"].as_str().unwrap_or_default();
    assert!(last.ends_with(&format!(":{b_pid}")), "{described}");
    assert_eq!(described["outcome"]["result"][0]["status"], "succeeded");
    let query = format!("TaskQueue = '{queue}'");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = crate::temporal::cli(&cli, &address, &["activity", "list", "--query", &query]);
        let listed = listed.as_array().cloned().unwrap_or_default();
        // A step handed over again just as its activity closed has a second, answered at once.
        let ids: std::collections::BTreeSet<&str> = listed
            .iter()
            .filter_map(|a| a["activityId"].as_str())
            .collect();
        let done = listed
            .iter()
            .filter(|a| a["status"] == "ACTIVITY_EXECUTION_STATUS_COMPLETED")
            .count();
        if ids.len() == steps.len() && done == listed.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} activities of {} steps, {done} of {} executions completed",
            ids.len(),
            steps.len(),
            listed.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Bad `[executor]` settings are refused with exit 2 before anything is recorded; an unreachable
/// Temporal fails `materialize` before its run is recorded. No server needed.
#[test]
fn a_badly_configured_temporal_executor_is_refused_before_anything_is_recorded() {
    let p = diamond();
    let toml = std::fs::read_to_string(p.path().join("spine.toml")).unwrap();
    let runs = |p: &Project| {
        p.run(&["sql", "--json", "SELECT COUNT(*) AS n FROM spine.runs"])
            .ok()
            .json()[0]["n"]
            .as_i64()
            .unwrap()
    };
    let r = p.run(&["worker", "--temporal"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0104")
            && r.stderr.contains("[executor]")
            && r.stderr.contains("spine.toml"),
        "{}",
        r.stderr
    );
    let with = |extra: &str| p.write("spine.toml", &format!("{toml}\n[executor]\n{extra}\n"));
    with("kind = \"temporal\"\nheartbeat_timeout = \"soon\"");
    for args in [
        &["worker", "--temporal"][..],
        &["materialize"][..],
        &["execute"][..],
    ] {
        let r = p.run(args);
        r.code(2);
        assert!(
            r.stderr.contains("heartbeat_timeout"),
            "{args:?}: {}",
            r.stderr
        );
    }
    with("kind = \"temporal\"");
    let r = p.run(&["worker", "--temporal", "--pool", "gpu"]);
    r.code(2);
    assert!(r.stderr.contains("--pool"), "{}", r.stderr);
    with("kind = \"kubernetes\"");
    let r = p.run(&["materialize"]);
    r.code(2);
    assert!(
        r.stderr.contains("kubernetes")
            && r.stderr.contains("in_process")
            && r.stderr.contains(":7"),
        "{}",
        r.stderr
    );
    // Nothing listens on port 9: materialize fails before recording its run.
    with("kind = \"temporal\"\naddress = \"127.0.0.1:9\"");
    let r = p.run(&["materialize"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Temporal"), "{}", r.stderr);
    p.write("spine.toml", &toml);
    assert_eq!(runs(&p), 0, "no run was recorded");
}
