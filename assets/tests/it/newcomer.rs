//! What a new user runs into in the first hour (issue: "A newcomer's first hour"): one test per defect,
//! and the habits users bring from dbt and Dagster.

use crate::common::*;
use std::time::{Duration, Instant};

/// A command asset reading its upstream with DuckDB, pandas and polars through `SPINE_FILES_<KEY>`, and
/// with the exact file list from `SPINE_UPSTREAMS`, sees only the version it reads — although the
/// upstream's folder holds the files of three versions.
#[test]
fn command_assets_read_exactly_the_upstream_version() {
    let reader = r#"
import json, os
d = os.environ["SPINE_FILES_RAW__NUMS"]
files = json.loads(os.environ["SPINE_UPSTREAMS"])["raw/nums"]["files"]
import duckdb, pandas as pd, polars as pl
counts = {
    "duckdb": duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{d}/*.parquet')").fetchall()[0][0],
    "duckdb_list": duckdb.read_parquet(files).aggregate("count(*)").fetchall()[0][0],
    "pandas": len(pd.read_parquet(d)),
    "polars": pl.read_parquet(f"{d}/*.parquet").height,
}
with open(os.path.join(os.environ["SPINE_OUTPUT_DIR"], "counts.jsonl"), "w") as f:
    for k, v in counts.items():
        f.write(json.dumps({"reader": k, "n": int(v)}) + "\n")
"#;
    let p = Project::new(&[
        (
            "assets/a.yaml",
            "key: raw/nums\nkind: sql\nquery: SELECT value AS v FROM generate_series(1, 4)\n",
        ),
        (
            "assets/b.yaml",
            "key: counted\nkind: command\ncommand: [python3, read.py]\ndeps: [raw/nums]\n",
        ),
        ("assets/read.py", reader),
    ]);
    p.run(&["materialize", "raw/nums"]).ok();
    p.run(&["materialize", "--force", "raw/nums"]).ok();
    p.run(&["materialize", "--force", "raw/nums"]).ok();
    let parquet_in_folder = std::fs::read_dir(p.path().join("warehouse/raw/nums"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert!(
        parquet_in_folder >= 3,
        "the folder keeps old versions' files"
    );
    p.run(&["materialize", "counted"]).ok();
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT reader, n FROM counted ORDER BY reader",
        ])
        .json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in rows {
        assert_eq!(
            r["n"], 4,
            "{} read another version's rows: {r}",
            r["reader"]
        );
    }
}

/// The run prefix `status` prints can be pasted into `assets run`; a prefix shared by two runs is bad
/// usage (exit 2) and lists both.
#[test]
fn printed_run_prefixes_are_unique_and_ambiguous_ones_exit_2() {
    let p = diamond();
    p.run(&["materialize", "raw/a"]).ok();
    p.run(&["materialize", "--force", "raw/a"]).ok();
    let runs = p.run(&["runs", "--json"]).json();
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let status = p.run(&["status", "raw/a"]);
    status.ok();
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("raw/a"))
        .unwrap()
        .to_string();
    let prefix = line.split_whitespace().nth(3).unwrap();
    assert!(
        prefix.len() >= 12 && ids[0].starts_with(prefix),
        "{prefix} in {line}"
    );
    let shown = p.run(&["run", prefix]);
    shown.ok();
    assert!(shown.stdout.contains(ids[0]), "{}", shown.stdout);
    p.run(&["logs", prefix]).ok();

    let common: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let r = p.run(&["run", &common]);
    r.code(2);
    assert!(
        r.stderr.contains("ambiguous") && r.stderr.contains(ids[0]) && r.stderr.contains(ids[1]),
        "{}",
        r.stderr
    );
    let r = p.run(&["logs", "ffffffff"]);
    r.code(2);
    assert!(r.stderr.contains("no run"), "{}", r.stderr);
}

fn processes_with(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("ps -eo"))
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C and timeouts end the whole process group: `sh -c 'sleep …'` leaves no `sleep` behind.
#[test]
fn cancel_and_timeout_end_the_commands_children() {
    let marker = "sleep 41.417";
    let p = Project::new(&[(
        "assets/a.yaml",
        &format!("key: slow\nkind: command\ncommand: [sh, -c, '{marker}; echo done']\n"),
    )]);
    let child = bin()
        .args(["materialize"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the grandchild to start", || {
        !processes_with(marker).is_empty()
    });
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    wait_for("the grandchild to end after Ctrl-C", || {
        processes_with(marker).is_empty()
    });

    let marker = "sleep 43.219";
    p.write(
        "assets/a.yaml",
        &format!(
            "key: slow\nkind: command\ncommand: [sh, -c, '{marker}; echo done']\ntimeout: 1s\n"
        ),
    );
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    assert!(r.stdout.contains("timed out"), "{}", r.stdout);
    wait_for("the grandchild to end after a timeout", || {
        processes_with(marker).is_empty()
    });
}

/// A `gs://` warehouse (not supported yet) is bad usage at load time, from spine.toml or the
/// environment, and nothing is created.
#[test]
fn unsupported_warehouse_urls_are_rejected_up_front() {
    let p = Project::new(&[
        (
            "spine.toml",
            "[project]\nname = \"t\"\n[warehouse]\nurl = \"gs://bucket/prefix\"\n",
        ),
        ("assets/a.yaml", "key: a\nkind: sql\nquery: SELECT 1 AS v\n"),
    ]);
    for cmd in [&["check"][..], &["materialize"], &["status"]] {
        let r = p.run(cmd);
        r.code(2);
        assert!(
            r.stderr.contains("E0108") && r.stderr.contains("gs"),
            "{}",
            r.stderr
        );
    }
    assert!(!p.path().join(".spine").exists(), "nothing stored");
    let q = diamond();
    let r = run_in_env(
        q.path(),
        &["materialize"],
        &[("SPINE_WAREHOUSE_URL", "gs://bucket/x".into())],
    );
    r.code(2);
    assert!(r.stderr.contains("E0108"), "{}", r.stderr);
    let r = run_in_env(
        q.path(),
        &["status"],
        &[("SPINE_STATE_URL", "mysql://localhost/x".into())],
    );
    r.code(2);
    assert!(r.stderr.contains("E0109"), "{}", r.stderr);
}

/// `status` never says `fresh` with a staleness reason: a fresh asset below a stale one is
/// `upstream-stale`, and the reason names that upstream.
#[test]
fn status_state_and_reason_agree() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    p.write(
        "assets/a.yaml",
        "key: raw/a\nkind: sql\nquery: SELECT value AS id, value * 3 AS x FROM generate_series(1, 100)\n",
    );
    let v = p.run(&["status", "--json"]).json();
    let by_key = |k: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(by_key("raw/a")["state"], "stale");
    let b = by_key("stg/b");
    assert_eq!(b["state"], "upstream_stale");
    assert_eq!(b["freshness"]["state"], "fresh");
    assert_eq!(b["outdated_upstream"], "raw/a");
    assert_eq!(by_key("marts/c")["outdated_upstream"], "raw/a");
    let text = p.run(&["status"]);
    for line in text.stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(1) == Some(&"fresh") {
            assert!(!line.contains("stale"), "fresh with a stale reason: {line}");
        }
    }
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("stg/b"))
        .unwrap();
    assert!(
        line.contains("upstream-stale") && line.contains("raw/a"),
        "{line}"
    );
}

/// A selection that matches nothing records nothing and is bad usage.
#[test]
fn empty_selection_records_no_run() {
    let p = diamond();
    let r = p.run(&["materialize", "tag:nope"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0403") && r.stderr.contains("matched no asset"),
        "{}",
        r.stderr
    );
    let r = p.run(&["materialize", "--dry-run", "tag:nope"]);
    r.code(2);
    p.run(&["materialize", "tag:daily"]).code(1); // marts/d alone: its upstream was never built
    let runs = p.run(&["runs", "--json"]).json();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

/// A failed command's stderr appears once in what the user sees; stderr lines get a level only when
/// they state one; nothing is coloured when stderr is not a terminal.
#[test]
fn failed_command_output_is_printed_once_with_honest_levels() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: bad\nkind: command\ncommand: [python3, -c, \"import sys, logging; logging.warning('careful'); print('plain line', file=sys.stderr); print('BO' 'OM', file=sys.stderr); sys.exit(3)\"]\n",
    )]);
    let r = p.run(&["materialize"]);
    r.code(1);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(all.matches("BOOM").count(), 1, "{all}");
    assert!(
        !all.contains('\u{1b}'),
        "ANSI codes without a terminal: {all:?}"
    );
    let v = p.run(&["materialize", "-v"]);
    assert!(!v.stderr.contains('\u{1b}'), "{:?}", v.stderr);
    let run = p.run(&["runs", "--json"]).json()[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = p.run(&["logs", &run, "--step", "bad", "--json"]).json();
    let level_of = |msg: &str| {
        events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["message"].as_str().unwrap_or("").contains(msg))
            .map(|e| e["level"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no event {msg} in {events}"))
    };
    assert_eq!(level_of("WARNING:root:careful"), "warn");
    assert_eq!(level_of("plain line"), "info");
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["step_id"] == "bad"));
}

/// `assets run` shows a step's whole error, with the cause under the first line. The error is a data
/// error: permanent, so `retries` does not repeat it.
#[test]
fn run_shows_the_whole_error_chain() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: bad_cast\nkind: sql\nquery: SELECT CAST('x' AS INT) AS v\nretries: 3\n",
    )]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let step = &r.json()["steps"][0];
    assert_eq!(step["attempts"], 1, "{step}");
    assert_eq!(step["failure_class"], "permanent", "{step}");
    let run = p.run(&["runs", "--json"]).json()[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = p.run(&["run", &run]);
    shown.ok();
    assert!(
        shown.stdout.contains("Cannot cast string 'x'"),
        "{}",
        shown.stdout
    );
}

fn shared_graph() -> Project {
    Project::new(&[(
        "assets/all.yaml",
        "assets:\n  - {key: a, kind: sql, query: SELECT 1 AS v}\n  - {key: b, kind: sql, query: SELECT v FROM a}\n  - {key: c, kind: sql, query: SELECT v FROM a}\n  - {key: d, kind: sql, query: SELECT b.v FROM b JOIN c ON b.v = c.v}\n  - {key: e, kind: sql, query: SELECT v FROM d}\n",
    )])
}

/// Lineage trees expand a shared subtree once; `--json` means JSON; `--all` exports the whole graph.
#[test]
fn lineage_prints_shared_subtrees_once() {
    let p = shared_graph();
    let r = p.run(&["lineage", "a", "--downstream"]);
    r.ok();
    let e_lines = r.stdout.lines().filter(|l| l.ends_with(" e")).count();
    assert_eq!(e_lines, 1, "{}", r.stdout);
    assert!(r.stdout.contains("d (*)"), "{}", r.stdout);
    let j = p.run(&["lineage", "a", "--json"]).json();
    assert_eq!(j["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(j["edges"].as_array().unwrap().len(), 5);
    let all = p.run(&["lineage", "--all", "--format", "mermaid"]);
    all.ok();
    assert!(all.stdout.starts_with("flowchart LR"), "{}", all.stdout);
    assert_eq!(all.stdout.matches("-->").count(), 5, "{}", all.stdout);
    let dot = p.run(&["lineage", "--all", "--format", "dot"]);
    assert_eq!(dot.stdout.matches("\"d\" [label").count(), 1);
    let j = p.run(&["lineage", "--all", "--json"]).json();
    assert!(j["root"].is_null());
    assert_eq!(j["nodes"].as_array().unwrap().len(), 5);
}

/// dbt/Dagster habits: several selections, `--select/-s`, `--exclude`, `--dry-run`, completions.
#[test]
fn selection_flags_dry_run_and_completions() {
    let p = diamond();
    let plan = p
        .run(&["materialize", "--dry-run", "--json", "raw/a", "marts/d"])
        .json();
    let keys: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["raw/a", "marts/d"]);
    assert!(plan[0]["run"].as_bool().unwrap());
    assert_eq!(plan[0]["reason"], "never materialized");
    assert!(p
        .run(&["runs", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    let r = p
        .run(&[
            "materialize",
            "--json",
            "-s",
            "raw/a+",
            "--exclude",
            "marts/*",
        ])
        .json();
    let ran: Vec<(String, String)> = step_statuses(&r);
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran.iter().all(|(_, s)| s == "succeeded"));

    let plan = p.run(&["materialize", "--dry-run"]);
    plan.ok();
    let line = |k: &str| {
        plan.stdout
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("{k} in {}", plan.stdout))
            .to_string()
    };
    assert!(line("raw/a").contains("skip") && line("raw/a").contains("fresh"));
    assert!(line("marts/c").contains("run") && line("marts/c").contains("never materialized"));
    assert!(
        plan.stdout.contains("2 of 4 step(s) would run"),
        "{}",
        plan.stdout
    );

    let c = p.run(&["completions", "bash"]);
    c.ok();
    assert!(c.stdout.contains("materialize") && c.stdout.contains("--dry-run"));
}

/// `logs --follow` prints events while the run goes on and returns when it ends.
#[test]
fn logs_follow_returns_when_the_run_ends() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: slowish\nkind: command\ncommand: [python3, -c, \"import os, time; print('tick', flush=True); time.sleep(1.5); open(os.environ['SPINE_OUTPUT_DIR']+'/x.jsonl','w').write('{\\\"v\\\": 1}\\\\n'); print('tock', flush=True)\"]\n",
    )]);
    let run = bin()
        .args(["materialize"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_running(&p, "slowish");
    let id = p.run(&["runs", "--json"]).json()[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let follow = p.run(&["logs", &id, "--follow"]);
    follow.ok();
    let out = follow.stdout;
    let (tick, tock, end) = (
        out.find("tick").expect("tick"),
        out.find("tock")
            .expect("tock, printed after follow started"),
        out.find("run succeeded").expect("the run's end"),
    );
    assert!(tick < tock && tock < end, "{out}");
    run.wait_with_output().unwrap();
}

/// `materialize --queue` records a run without running it; `execute` runs the oldest queued run.
#[test]
fn queued_runs_are_executed_later() {
    let p = diamond();
    let q = p
        .run(&["materialize", "--queue", "--json", "raw/a+"])
        .json();
    assert_eq!(q["status"], "queued");
    assert_eq!(q["steps"], 4);
    let id = q["run_id"].as_str().unwrap().to_string();
    let runs = p.run(&["runs", "--json"]).json();
    assert_eq!(runs[0]["status"], "queued");
    assert!(
        !p.path().join("warehouse/raw/a/_delta_log").exists(),
        "nothing ran"
    );
    let r = p.run(&["execute", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["run_id"], id.as_str());
    assert_eq!(v["status"], "succeeded");
    assert_eq!(step_statuses(&v).len(), 4);
    let again = p.run(&["execute"]);
    again.ok();
    assert!(again.stderr.contains("no queued run"), "{}", again.stderr);
    let done = p.run(&["execute", &id]);
    done.code(2);
    assert!(done.stderr.contains("E0407"), "{}", done.stderr);
}
