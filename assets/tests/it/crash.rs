//! Crashes: `kill -9` mid-step and a crash between a Delta commit and its record. The next run settles
//! the interrupted one, records committed work without recomputing it, and recomputes only the rest.

use crate::common::*;

#[test]
fn crash_between_commit_and_record_is_recovered_without_recompute() {
    let p = diamond();
    let out = run_in_env(
        p.path(),
        &["materialize", "--json", "-c", "1"],
        &[("SPINE_FAULT", "crash_after_commit:stg/b".into())],
    );
    assert_ne!(out.code, 0, "the fault should abort the process");
    // stg/b committed (Delta version 0) but the store never recorded it.
    assert!(p
        .path()
        .join("warehouse/stg/b/_delta_log/00000000000000000000.json")
        .exists());
    let m = p.run(&[
        "sql",
        "--json",
        "SELECT COUNT(*) AS n FROM spine.materializations WHERE asset_key = 'stg/b'",
    ]);
    assert_eq!(m.json()[0]["n"], 0);

    let r = p.run(&["materialize", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(status_of(&v, "raw/a"), "up_to_date");
    assert_eq!(
        status_of(&v, "stg/b"),
        "up_to_date",
        "the landed commit is recorded, not recomputed"
    );
    assert_eq!(status_of(&v, "marts/c"), "succeeded");
    assert!(
        !p.path()
            .join("warehouse/stg/b/_delta_log/00000000000000000001.json")
            .exists(),
        "stg/b was recomputed"
    );

    let runs = p.run(&["runs", "--json"]).json();
    let crashed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "failed")
        .expect("the crashed run is settled");
    // stg/b's commit at least; with `-c 1` the next step may start while the previous one's record
    // is still being written, so marts/d (committed, its record lost with the process) can be a second.
    let error = crashed["error"].as_str().unwrap();
    assert!(
        error.contains("1 committed step(s) recorded")
            || error.contains("2 committed step(s) recorded"),
        "{crashed}"
    );
    // The recovered materialization carries the commit's own record: rows and upstream versions.
    let m = p
        .run(&[
            "sql",
            "--json",
            "SELECT row_count, upstream FROM spine.materializations WHERE asset_key = 'stg/b'",
        ])
        .json();
    assert_eq!(m[0]["row_count"], 100);
    assert!(m[0]["upstream"].as_str().unwrap().contains("raw/a"));
}

#[test]
fn kill_9_mid_step_leaves_consistent_tables_and_the_next_run_resumes() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: quick\nkind: sql\nquery: SELECT 1 AS v\n"),
        ("assets/b.yaml", "key: slow\nkind: command\ncommand: [python3, -c, \"import time; time.sleep(60)\"]\ndeps: [quick]\n"),
    ]);
    let mut child = bin()
        .args(["materialize"])
        .current_dir(p.path())
        .spawn()
        .unwrap();
    wait_until_running(&p, "slow");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!p.path().join("warehouse/slow/_delta_log").exists());
    let listed = p.run(&["runs"]);
    assert!(
        listed.stdout.contains("running (process died)"),
        "{}",
        listed.stdout
    );

    p.write(
        "assets/b.yaml",
        "key: slow\nkind: sql\nquery: SELECT v + 1 AS v FROM quick\n",
    );
    let r = p.run(&["materialize", "--json"]);
    r.ok();
    assert_eq!(status_of(&r.json(), "quick"), "up_to_date");
    assert_eq!(status_of(&r.json(), "slow"), "succeeded");
    let runs = p.run(&["runs", "--json"]).json();
    let killed = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "failed")
        .expect("the killed run is settled");
    assert!(
        killed["error"]
            .as_str()
            .unwrap()
            .contains("1 step(s) abandoned"),
        "{killed}"
    );
    // Settling the killed run removed its scratch folder (the command's output folder was there).
    let scratch = p
        .path()
        .join(".spine/tmp")
        .join(killed["run_id"].as_str().unwrap());
    assert!(!scratch.exists(), "{} left behind", scratch.display());
}

/// Whether a process is gone (or a zombie nobody reaped yet: it runs no more).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A command's own children outlive a `kill -9` of Spine (only the command dies with it); settling the
/// killed run ends every process still carrying the run's id.
#[test]
fn settling_a_killed_run_ends_its_commands_children() {
    let spawn = "import os, subprocess, time\n\
p = subprocess.Popen(['sleep', '300'])\n\
open(os.path.join(os.environ['SPINE_PROJECT_DIR'], 'grandchild.pid'), 'w').write(str(p.pid))\n\
time.sleep(300)\n";
    let p = Project::new(&[
        ("assets/spawn.py", spawn),
        (
            "assets/a.yaml",
            "key: spawner\nkind: command\ncommand: [python3, spawn.py]\n",
        ),
    ]);
    let mut child = bin()
        .args(["materialize"])
        .current_dir(p.path())
        .spawn()
        .unwrap();
    let pid_file = p.path().join("grandchild.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started its child"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !gone(&pid),
        "the grandchild outlived Spine (what this test is about)"
    );
    // The next run settles the killed one (the asset no longer starts anything).
    p.write(
        "assets/a.yaml",
        "key: spawner\nkind: sql\nquery: SELECT 1 AS v\n",
    );
    p.run(&["materialize"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gone(&pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} started by the killed run's command is still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Exact landed-commit lookup at any table age (issue 28, item 5): a step crashes right after its
/// commit (version 0); 300 more versions land on the table (appends by another Delta writer, Python
/// `deltalake`); the next run still finds the crashed step's commit by its `txn`, records it, and
/// commits nothing a second time.
#[test]
fn a_commit_300_versions_back_is_recovered_without_a_second_commit() {
    let p = Project::new(&[
        (
            "assets/a.yaml",
            "key: raw/a\nkind: sql\nquery: SELECT value AS x FROM generate_series(1, 3)\n",
        ),
        (
            "assets/b.yaml",
            "key: b\nkind: sql\nquery: SELECT SUM(x) AS s FROM raw.a\n",
        ),
    ]);
    let out = run_in_env(
        p.path(),
        &["materialize"],
        &[("SPINE_FAULT", "crash_after_commit:raw/a".into())],
    );
    assert_ne!(out.code, 0, "the fault should abort the process");
    let table = p.path().join("warehouse/raw/a");
    let seen = python_json(
        r#"
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path = sys.argv[1]
t = pa.table({"x": pa.array([7], pa.int64())})
for _ in range(300):
    write_deltalake(path, t, mode="append")
sys.stdout.write(json.dumps({"version": DeltaTable(path).version()}))
sys.stdout.flush()
os._exit(0)
"#,
        &[table.display().to_string()],
    );
    assert_eq!(seen["version"], 300);
    let v = p.run(&["materialize", "--json"]).ok().json();
    assert_eq!(status_of(&v, "raw/a"), "up_to_date", "{v}");
    assert_eq!(status_of(&v, "b"), "succeeded", "{v}");
    let m = p
        .run(&[
            "sql",
            "--json",
            "SELECT delta_version AS v FROM spine.materializations WHERE asset_key = 'raw/a'",
        ])
        .ok()
        .json();
    assert_eq!(m, serde_json::json!([{"v": 0}]), "recorded from version 0");
    // One commit carries raw/a's txn: nothing was committed a second time.
    let with_txn = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("\"txn\"")
        })
        .count();
    assert_eq!(with_txn, 1);
    let s = p.run(&["sql", "--json", "SELECT s FROM b"]).ok().json();
    assert_eq!(
        s,
        serde_json::json!([{"s": 6}]),
        "b read the recorded version 0"
    );
}
