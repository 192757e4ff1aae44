//! Issue 26's smaller data-integrity defects, one test each: output nobody could read is refused
//! before its commit, permanent failures are not retried, and `publish` takes no empty reason nor a
//! partition the asset does not have.

use crate::common::*;

/// An asset's `state` in `assets status --json`.
fn asset_state(status: &serde_json::Value, key: &str) -> String {
    status
        .as_array()
        .expect("a list")
        .iter()
        .find(|a| a["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {status}"))["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn step(report: &serde_json::Value, key: &str) -> serde_json::Value {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {report}"))
        .clone()
}

/// `SELECT FROM t` plans to a table without columns, which no Delta reader can scan: refused, once,
/// and no table is created.
#[test]
fn a_zero_column_output_is_refused_before_its_commit() {
    let p = Project::new(&[
        ("assets/t.yaml", "key: t\nkind: sql\nquery: SELECT 1 AS v\n"),
        (
            "assets/e.yaml",
            "key: e\nkind: sql\nquery: SELECT FROM t\nretries: 2\n",
        ),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let e = step(&r.json(), "e");
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(e["attempts"], 1, "{e}");
    assert_eq!(e["failure_class"], "permanent", "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("has no columns"),
        "{e}"
    );
    assert!(!p.path().join("warehouse/e/_delta_log").exists());
    // The rest of the project is unharmed and readable.
    let rows = p.run(&["sql", "--json", "SELECT v FROM t"]).ok().json();
    assert_eq!(rows[0]["v"], 1);
}

/// Errors no retry can mend are permanent: a query whose output has two columns of one name, a
/// malformed CSV source, an upstream whose Delta log is corrupt.
#[test]
fn permanent_failures_are_not_retried() {
    let p = Project::new(&[
        (
            "assets/a.yaml",
            "key: a\nkind: sql\nquery: SELECT 1 AS id\n",
        ),
        (
            "assets/b.yaml",
            "key: b\nkind: sql\nquery: SELECT 1 AS id\n",
        ),
        (
            "assets/j.yaml",
            "key: j\nkind: sql\nquery: SELECT * FROM a JOIN b ON a.id = b.id\nretries: 2\n",
        ),
        (
            "assets/raw.yaml",
            "key: raw/csv\nkind: source\npath: ../data/*.csv\n",
        ),
        (
            "assets/c.yaml",
            "key: c\nkind: sql\nquery: SELECT SUM(x) AS x FROM raw.csv\nretries: 2\n",
        ),
        (
            "assets/a2.yaml",
            "key: a2\nkind: sql\nquery: SELECT 1 AS id\n",
        ),
        (
            "assets/d.yaml",
            "key: d\nkind: sql\nquery: SELECT id + 1 AS id FROM a2\nretries: 2\n",
        ),
        ("data/0.csv", "id,x\n1,2\n2,3\n"),
    ]);
    p.run(&["materialize"]).code(1);
    // A ragged CSV row and a truncated Delta commit.
    p.write("data/0.csv", "id,x\n1,2\n2,3,4,5\n3,4\n");
    let log = p
        .path()
        .join("warehouse/a2/_delta_log/00000000000000000000.json");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, &text[..text.len() / 2]).unwrap();
    let r = p.run(&["materialize", "--force", "--json", "j", "raw/csv", "c", "d"]);
    r.code(1);
    let v = r.json();
    // The malformed CSV fails its observation (c, which reads it, is skipped).
    assert_eq!(step(&v, "c")["status"], "skipped");
    for key in ["j", "raw/csv", "d"] {
        let s = step(&v, key);
        assert_eq!(s["status"], "failed", "{s}");
        assert_eq!(
            (&s["failure_class"], &s["attempts"]),
            (&"permanent".into(), &1.into()),
            "{key}: {s}"
        );
    }
    let csv = step(&v, "raw/csv");
    assert!(
        csv["error"].as_str().unwrap().contains("line 3"),
        "the ragged row's line is named: {csv}"
    );
    let j = step(&v, "j");
    assert!(
        j["error"].as_str().unwrap().contains("id"),
        "the duplicate column is named: {j}"
    );
}

/// `publish` records why a held-back version may be read: an empty reason is refused, and so is a
/// partition on an unpartitioned asset (or none on a partitioned one), with nothing changed.
#[test]
fn publish_refuses_an_empty_reason_and_a_partition_the_asset_lacks() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: a\nkind: sql\nquery: SELECT CAST(NULL AS INT) AS id\nchecks:\n  - not_null: [id]\n",
    )]);
    p.run(&["materialize"]).code(1);
    // What a publish changes: the warehouse, and the store's publications. (The state file itself
    // changes: the audit log records each refused attempt.)
    let state = |p: &Project| {
        let files: Vec<_> = p
            .snapshot()
            .into_iter()
            .filter(|(f, _, _)| !f.ends_with(".spine/state.db"))
            .collect();
        let published = p
            .run(&[
                "sql",
                "--json",
                "SELECT id, published FROM spine.materializations ORDER BY id",
            ])
            .ok()
            .json();
        (files, published)
    };
    let before = state(&p);
    for (args, expect) in [
        (vec!["--reason", ""], "needs a reason"),
        (vec!["--reason", "  "], "needs a reason"),
        (
            vec!["--reason", "ok", "--partition", "2026-01-01"],
            "a is not partitioned",
        ),
    ] {
        let mut all = vec!["publish", "a", "--version", "0"];
        all.extend(args);
        let r = p.run(&all);
        r.code(2);
        assert!(
            r.stderr.contains("E0231") && r.stderr.contains(expect),
            "{all:?}: {}",
            r.stderr
        );
    }
    assert_eq!(before, state(&p), "a refused publish changed state");
    let log = p.run(&["audit", "--json"]).ok().json();
    let attempts = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "publish")
        .count();
    assert_eq!(
        attempts, 3,
        "each refused attempt is in the audit log: {log}"
    );
    p.run(&["publish", "a", "--version", "0", "--reason", "known gap"])
        .ok();
}

/// raw/a copies a CSV source; stg/b sums it.
fn chain() -> Project {
    Project::new(&[
        (
            "assets/src.yaml",
            "key: src/a\nkind: source\npath: ../data/a.csv\n",
        ),
        (
            "assets/a.yaml",
            "key: raw/a\nkind: sql\nquery: SELECT id, x FROM src.a\n",
        ),
        (
            "assets/b.yaml",
            "key: stg/b\nkind: sql\nquery: SELECT SUM(x) AS s, COUNT(*) AS n FROM raw.a\n",
        ),
        ("data/a.csv", "id,x\n1,10\n"),
    ])
}

fn write_rows(p: &Project, trial: u64, rng: &mut Rng) {
    let mut csv = String::from("id,x\n");
    for id in 0..(2 + rng.below(20)) {
        csv.push_str(&format!("{id},{}\n", trial * 1000 + rng.below(997)));
    }
    p.write("data/a.csv", &csv);
}

/// Every `txn` action of a table's log, as (app id, version), in commit order; read from the log
/// files themselves, not through Spine.
fn txns(table: &std::path::Path) -> Vec<(String, i64)> {
    let mut files: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(t) = v.get("txn") {
                out.push((
                    t["appId"].as_str().unwrap().to_string(),
                    t["version"].as_i64().unwrap(),
                ));
            }
        }
    }
    out
}

/// The latest version and rows of each table, read by the Python `deltalake` package.
const TABLES: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for name in sys.argv[1:]:
    dt = DeltaTable(name)
    out[name] = {"version": dt.version(), "rows": dt.to_pyarrow_table().to_pylist()}
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"#;

/// Asserts that the tables hold what the run store says: every recorded latest version is the
/// table's latest, stg/b's sum is a recomputation from raw/a's rows, stg/b read raw/a's recorded
/// version, both are fresh, and no table was given one `txn` version twice for a step.
fn assert_store_agrees_with_tables(p: &Project, context: &str) {
    let wh = p.path().join("warehouse");
    let (a, b) = (
        wh.join("raw/a").display().to_string(),
        wh.join("stg/b").display().to_string(),
    );
    let tables = python_json(TABLES, &[a.clone(), b.clone()]);
    let rows_a = tables[&a]["rows"].as_array().unwrap();
    let sum: i64 = rows_a.iter().map(|r| r["x"].as_i64().unwrap()).sum();
    let row_b = &tables[&b]["rows"][0];
    assert_eq!(
        (row_b["s"].as_i64(), row_b["n"].as_i64()),
        (Some(sum), Some(rows_a.len() as i64)),
        "{context}: stg/b does not sum raw/a's current rows"
    );
    let recorded = p
        .run(&[
            "sql",
            "--json",
            "SELECT asset_key, delta_version, upstream FROM spine.materializations \
             WHERE asset_key IN ('raw/a', 'stg/b') ORDER BY id",
        ])
        .ok()
        .json();
    let latest = |key: &str| {
        recorded
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["asset_key"] == key)
            .unwrap_or_else(|| panic!("{context}: nothing recorded for {key}: {recorded}"))
            .clone()
    };
    let (ma, mb) = (latest("raw/a"), latest("stg/b"));
    assert_eq!(
        ma["delta_version"], tables[&a]["version"],
        "{context}: raw/a"
    );
    assert_eq!(
        mb["delta_version"], tables[&b]["version"],
        "{context}: stg/b"
    );
    let upstream = mb["upstream"].to_string();
    assert!(
        upstream.contains(&format!("\\\"delta_version\\\":{}", ma["delta_version"]))
            || upstream.contains(&format!("\"delta_version\":{}", ma["delta_version"])),
        "{context}: stg/b's lineage names another raw/a version than {}: {upstream}",
        ma["delta_version"]
    );
    let status = p.run(&["status", "--json"]).ok().json();
    for key in ["raw/a", "stg/b"] {
        assert_eq!(asset_state(&status, key), "fresh", "{context}: {status}");
    }
    for t in [&a, &b] {
        let all = txns(std::path::Path::new(t));
        let mut seen = std::collections::HashSet::new();
        for x in &all {
            assert!(
                seen.insert(x.clone()),
                "{context}: {t} holds txn {x:?} twice: {all:?}"
            );
        }
    }
}

/// The run store is lost (deleted) or restored from an earlier copy between runs, as the runbook
/// allows; the next run is killed before or after a commit and the one after recovers. Sequence
/// numbers never repeat what a table holds, recovery records only the crashed run's own commits, and
/// what is recorded fresh equals a recomputation (issue 26, defect 2). 20 trials.
#[test]
fn a_lost_or_restored_run_store_never_invents_a_materialization() {
    let mut rng = Rng::seeded("a_lost_or_restored_run_store_never_invents_a_materialization");
    let p = chain();
    p.run(&["materialize"]).ok();
    let backup = tempfile::tempdir().unwrap();
    let spine = p.path().join(".spine");
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let _ = std::fs::remove_dir_all(to);
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy(&spine, backup.path());
    for trial in 1..=20 {
        write_rows(&p, trial, &mut rng);
        p.run(&["materialize"]).ok();
        let how = match rng.below(3) {
            0 => {
                std::fs::remove_dir_all(&spine).unwrap();
                "store deleted"
            }
            1 => {
                copy(backup.path(), &spine);
                "store restored from the first copy"
            }
            _ => "store kept",
        };
        write_rows(&p, trial + 100, &mut rng);
        let fault = match rng.below(3) {
            0 => "crash_before_commit:stg/b",
            1 => "crash_after_commit:stg/b",
            _ => "crash_after_commit:raw/a",
        };
        let crashed = run_in_env(
            p.path(),
            &["materialize", "-c", "1"],
            &[("SPINE_FAULT", fault.into())],
        );
        assert_ne!(crashed.code, 0, "trial {trial}: {fault} did not abort");
        p.run(&["materialize"]).ok();
        assert_store_agrees_with_tables(&p, &format!("trial {trial} ({how}, {fault})"));
    }
}

/// Several processes find the same dead run at once: exactly one settles it, so each landed commit
/// is recorded once (issue 26, defect 4). 20 trials.
#[test]
fn two_processes_settling_one_dead_run_record_its_commits_once() {
    let mut rng = Rng::seeded("two_processes_settling_one_dead_run_record_its_commits_once");
    let p = chain();
    p.run(&["materialize"]).ok();
    for trial in 1..=20 {
        write_rows(&p, trial, &mut rng);
        let crashed = run_in_env(
            p.path(),
            &["materialize", "-c", "1"],
            &[("SPINE_FAULT", "crash_after_commit:stg/b".into())],
        );
        assert_ne!(crashed.code, 0);
        let settlers: Vec<_> = (0..2)
            .map(|_| {
                bin()
                    .args(["materialize"])
                    .current_dir(p.path())
                    .env_remove("SPINE_FAULT")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for s in settlers {
            let out = s.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dup = p
            .run(&[
                "sql",
                "--json",
                "SELECT asset_key, delta_version, COUNT(*) AS n FROM spine.materializations \
                 WHERE delta_version >= 0 GROUP BY asset_key, delta_version HAVING COUNT(*) > 1",
            ])
            .ok()
            .json();
        if dup != serde_json::json!([]) {
            let all = p.run(&["sql", "--json", "SELECT m.id, m.asset_key, m.delta_version, m.run_id, m.step_id, m.seq, m.created_at, r.status, r.error FROM spine.materializations m JOIN spine.runs r ON r.run_id = m.run_id WHERE m.asset_key = 'stg/b' ORDER BY m.id"]).ok().json();
            let all: Vec<_> = all
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| {
                    dup.as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["delta_version"] == m["delta_version"])
                })
                .cloned()
                .collect();
            panic!(
                "trial {trial}: commits recorded twice: {dup}\n{:#}",
                serde_json::json!(all)
            );
        }
        assert_store_agrees_with_tables(&p, &format!("trial {trial}"));
    }
}

const NOISY: &str = r#"
import os, sys
with open(os.path.join(os.environ["SPINE_OUTPUT_DIR"], "rows.csv"), "w") as f:
    f.write("id\n1\n")
out = sys.stdout
for i in range(200000):
    out.write(f"line {i}\n")
out.write("x" * 20000 + "\n")
"#;

/// A program that prints 200,000 lines: the run store keeps the first and the last thousand lines
/// and one event saying how many were left out; the lines in between are in a log file beside the
/// run, in order; the long line is cut (issue 26, defect 6).
#[test]
fn a_programs_endless_output_is_bounded_in_the_run_store() {
    let p = Project::new(&[
        ("assets/noisy.py", NOISY),
        (
            "assets/n.yaml",
            "key: noisy\nkind: command\ncommand: [python3, noisy.py]\n",
        ),
    ]);
    let v = p.run(&["materialize", "--json"]).ok().json();
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let count = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM spine.events WHERE step_id = 'noisy' AND kind = 'log'",
        ])
        .ok()
        .json();
    let n = count[0]["n"].as_i64().unwrap();
    assert!(
        (2000..=2003).contains(&n),
        "{n} log events stored for one step"
    );
    let logs = p
        .run(&["logs", &run_id, "--step", "noisy"])
        .ok()
        .stdout
        .clone();
    let lines: Vec<&str> = logs.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in the logs"))
    };
    let (first, head_end, summary, tail_start, last) = (
        at("line 0"),
        at("line 999"),
        at("log lines ("),
        at("line 199500"),
        at("line 199999"),
    );
    assert!(first < head_end && head_end < summary && summary < tail_start && tail_start < last);
    assert!(!logs.contains("line 1000\n") && !logs.contains("line 150000"));
    assert!(
        lines[summary].contains("198001 log lines"),
        "{}",
        lines[summary]
    );
    assert!(logs.contains("more bytes of this line not stored"));
    // The lines left out are in the spill file, in order.
    let dir = p.path().join(".spine/logs").join(&run_id);
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        lines[summary].contains(&file.display().to_string()),
        "{}",
        lines[summary]
    );
    let spilled = std::fs::read_to_string(&file).unwrap();
    let spilled: Vec<&str> = spilled.lines().collect();
    assert_eq!(spilled.len(), 198_001);
    assert_eq!(spilled[..3], ["line 1000", "line 1001", "line 1002"]);
    assert!(spilled.contains(&"line 150000"));
    let json = p.run(&["logs", &run_id, "--json"]).ok().json();
    assert!(json.as_array().unwrap().len() < 2100);
}

/// A value from the environment used in SQL through `[vars]` never appears in what Spine prints,
/// stores or logs: not in the step's error, the events, the run store's file or `-vvv` log lines
/// (issue 26, defect 8).
#[test]
fn values_from_the_environment_are_redacted_wherever_text_leaves_or_is_stored() {
    let secret = "hunter2-s3cr3t-token";
    let p = Project::new(&[
        (
            "spine.toml",
            "[project]\nname = \"t\"\n[vars]\ntoken = \"${env:SPINE_TEST_TOKEN}\"\n",
        ),
        (
            "assets/ok.yaml",
            "key: ok\nkind: sql\nquery: SELECT 1 AS v WHERE '${var:token}' <> ''\n",
        ),
        (
            "assets/bad.yaml",
            "key: bad\nkind: sql\nquery: SELECT CAST('${var:token}' AS INT) AS v\n",
        ),
    ]);
    let env = [("SPINE_TEST_TOKEN", secret.to_string())];
    let r = run_in_env(p.path(), &["-vvv", "materialize", "--json"], &env);
    r.code(1);
    let v = r.json();
    let bad = step(&v, "bad");
    assert!(
        bad["error"].as_str().unwrap().contains("'***'"),
        "the error names the masked value: {bad}"
    );
    assert!(
        r.stderr.contains("DEBUG") || r.stderr.contains("debug"),
        "-vvv logs: {}",
        &r.stderr[..r.stderr.len().min(500)]
    );
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let mut seen = format!("{}{}", r.stdout, r.stderr);
    for args in [
        vec!["runs", "--json"],
        vec!["run", &run_id],
        vec!["logs", &run_id],
        vec!["sql", "SELECT CAST('${var:token}' AS INT)"],
    ] {
        let out = run_in_env(p.path(), &args, &env);
        seen.push_str(&out.stdout);
        seen.push_str(&out.stderr);
    }
    assert!(!seen.contains(secret), "the secret was printed");
    assert!(seen.contains("***"));
    for (path, _, _) in p.snapshot() {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
}

/// `doctor` covers partitioned tables and leaves sources read in place alone: on a clean project it
/// passes; a truncated commit and a deleted data file of a partitioned table are found, and
/// `--repair` fixes them without touching the unrelated source (issue 26, defect 3).
#[test]
fn doctor_checks_partitioned_tables_and_skips_sources_read_in_place() {
    let p = Project::new(&[
        ("assets/src.yaml", "key: raw/rates\nkind: source\npath: ../data/rates.csv\n"),
        (
            "assets/days.yaml",
            "key: days\nkind: sql\npartitions:\n  daily: {start: 2026-01-01, end: 2026-01-04}\nquery: SELECT n FROM (VALUES (1), (2)) AS t(n)\n",
        ),
        ("assets/avg.yaml", "key: avg_rate\nkind: sql\nquery: SELECT AVG(rate) AS r FROM raw.rates\n"),
        ("data/rates.csv", "currency,rate\neur,1.0\nusd,2.0\n"),
    ]);
    p.run(&["materialize"]).ok();
    let clean = p.run(&["doctor", "--json"]).ok().json();
    let state = |v: &serde_json::Value, key: &str| {
        v["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {v}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state(&clean, "raw/rates"), "read_in_place", "{clean}");
    assert_eq!(state(&clean, "days"), "ok", "{clean}");
    assert_eq!(state(&clean, "avg_rate"), "ok", "{clean}");

    // A deleted data file of one partition.
    let table = p.path().join("warehouse/days");
    let file = std::fs::read_dir(&table)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let kept = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let r = p.run(&["doctor", "--json"]);
    r.code(1);
    let v = r.json();
    assert_eq!(state(&v, "days"), "broken", "{v}");
    assert!(v.to_string().contains("is missing"), "{v}");
    std::fs::write(&file, kept).unwrap();

    // A truncated commit of the partitioned table: found, and repaired.
    let mut commits: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    let last = commits.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    std::fs::write(last, &text[..text.len() / 2]).unwrap();
    let r = p.run(&["doctor", "--json"]);
    r.code(1);
    assert!(r.stdout.contains("not valid JSON"), "{}", r.stdout);
    let fixed = p.run(&["doctor", "--repair", "--json"]).ok().json();
    let steps = fixed["repair_run"]["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|s| s["key"] == "days"),
        "the repair touched more than the broken table: {fixed}"
    );
    assert_eq!(
        state(&p.run(&["doctor", "--json"]).ok().json(), "days"),
        "ok"
    );
    let st = p.run(&["status", "--json"]).ok().json();
    assert_eq!(asset_state(&st, "days"), "fresh", "{st}");
    p.run(&["materialize"]).ok();
}

/// A run store deleted under existing tables: `doctor` says the tables exist unrecorded.
#[test]
fn doctor_notices_tables_the_run_store_does_not_know() {
    let p = chain();
    p.run(&["materialize"]).ok();
    std::fs::remove_dir_all(p.path().join(".spine")).unwrap();
    let r = p.run(&["doctor", "--json"]);
    r.code(1);
    assert!(
        r.stdout.contains("records no materialization"),
        "{}",
        r.stdout
    );
}

/// A run whose process died shows as `interrupted` in `runs --json` (its stored status kept as
/// `stored_status`) until a command settles it (issue 26, defect 10).
#[test]
fn a_dead_run_is_not_shown_running() {
    let p = chain();
    let crashed = run_in_env(
        p.path(),
        &["materialize"],
        &[("SPINE_FAULT", "crash_before_commit:stg/b".into())],
    );
    assert_ne!(crashed.code, 0);
    let runs = p.run(&["runs", "--json"]).ok().json();
    assert_eq!(
        (&runs[0]["status"], &runs[0]["stored_status"]),
        (&"interrupted".into(), &"running".into()),
        "{runs}"
    );
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    let one = p.run(&["run", &id, "--json"]).ok().json();
    assert_eq!(one["run"]["status"], "interrupted", "{one}");
    p.run(&["materialize"]).ok();
    let runs = p.run(&["runs", "--json"]).ok().json();
    let settled = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id.as_str())
        .unwrap();
    assert_eq!(settled["status"], "failed", "{settled}");
}

/// Two forced runs of the starter project at once: whatever order their steps interleave in, every
/// asset ends fresh — a step that comes after the other run's newer upstream result computes from it
/// (issue 26, defect 5). 20 trials.
#[test]
fn overlapping_forced_runs_leave_everything_fresh() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init", "demo"]).ok();
    let root = dir.path().join("demo");
    run_in(&root, &["materialize"]).ok();
    for trial in 0..20 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                bin()
                    .args(["materialize", "--force"])
                    .current_dir(&root)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for r in runs {
            let out = r.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let status = run_in(&root, &["status", "--json"]).ok().json();
        for a in status.as_array().unwrap() {
            assert_eq!(a["state"], "fresh", "trial {trial}: {a}");
        }
        assert_starter_agrees_with_tables(&root, trial);
    }
}

/// The starter project read by Python's `deltalake`: each table's latest version is the one the
/// store records as the asset's latest, `marts/revenue_by_region` read the versions of its upstreams
/// that are their latest, and its rows are a recomputation from those upstreams' rows.
const STARTER: &str = r#"
import json, os, sys
from collections import defaultdict
from deltalake import DeltaTable
root = sys.argv[1]
keys = ["raw/orders", "raw/customers", "marts/daily_revenue", "marts/revenue_by_region"]
tables = {k: DeltaTable(os.path.join(root, k)) for k in keys}
region = {c["customer_id"]: c["region"] for c in tables["raw/customers"].to_pyarrow_table().to_pylist()}
want = defaultdict(lambda: [0, 0.0])
for o in tables["raw/orders"].to_pyarrow_table().to_pylist():
    if o["customer_id"] in region:
        w = want[region[o["customer_id"]]]
        w[0] += 1
        w[1] += o["amount"]
stored = {r["region"]: [r["orders"], r["revenue"]] for r in tables["marts/revenue_by_region"].to_pyarrow_table().to_pylist()}
sys.stdout.write(json.dumps({
    "versions": {k: t.version() for k, t in tables.items()},
    "recomputed": {k: [v[0], round(v[1], 6)] for k, v in want.items()},
    "stored": {k: [v[0], round(v[1], 6)] for k, v in stored.items()},
}))
sys.stdout.flush()
os._exit(0)
"#;

fn assert_starter_agrees_with_tables(root: &std::path::Path, trial: usize) {
    let seen = python_json(STARTER, &[root.join("warehouse").display().to_string()]);
    assert_eq!(seen["stored"], seen["recomputed"], "trial {trial}: {seen}");
    let recorded = run_in(
        root,
        &[
            "sql",
            "--json",
            "SELECT asset_key AS k, delta_version AS v FROM spine.materializations \
             WHERE id IN (SELECT MAX(id) FROM spine.materializations GROUP BY asset_key)",
        ],
    )
    .ok()
    .json();
    for m in recorded.as_array().unwrap() {
        let key = m["k"].as_str().unwrap();
        assert_eq!(
            m["v"], seen["versions"][key],
            "trial {trial}: {key} recorded at {} but its table is at {}",
            m["v"], seen["versions"][key]
        );
    }
    let read = run_in(
        root,
        &[
            "sql",
            "--json",
            "SELECT upstream_key AS k, upstream_delta_version AS v FROM spine.lineage \
             WHERE materialization_id = (SELECT MAX(id) FROM spine.materializations \
             WHERE asset_key = 'marts/revenue_by_region')",
        ],
    )
    .ok()
    .json();
    assert_eq!(read.as_array().unwrap().len(), 2, "trial {trial}: {read}");
    for r in read.as_array().unwrap() {
        let key = r["k"].as_str().unwrap();
        assert_eq!(
            r["v"], seen["versions"][key],
            "trial {trial}: revenue_by_region read {key} at {}, not its latest",
            r["v"]
        );
    }
}

/// A run store restored from an older copy, or lost: `doctor --repair` re-records what the tables
/// hold from their commits' own info, without computing anything again, and every asset is fresh
/// with its lineage (issue 26, defect 2).
#[test]
fn doctor_repair_re_records_what_a_restored_or_lost_store_missed() {
    let mut rng = Rng::seeded("doctor_repair_re_records_what_a_restored_or_lost_store_missed");
    let p = chain();
    p.run(&["materialize"]).ok();
    let spine = p.path().join(".spine");
    let backup = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&spine).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), backup.path().join(e.file_name())).unwrap();
        }
    }
    write_rows(&p, 1, &mut rng);
    p.run(&["materialize"]).ok();
    let versions = |p: &Project| {
        let wh = p.path().join("warehouse");
        [wh.join("raw/a"), wh.join("stg/b")].map(|t| txns(&t).len())
    };
    for lost in [false, true] {
        std::fs::remove_dir_all(&spine).unwrap();
        std::fs::create_dir_all(&spine).unwrap();
        if !lost {
            for e in std::fs::read_dir(backup.path()).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), spine.join(e.file_name())).unwrap();
            }
        }
        let before = versions(&p);
        let r = p.run(&["doctor"]);
        r.code(1);
        let fixed = p.run(&["doctor", "--repair", "--json"]).ok().json();
        assert!(
            fixed["repair_run"].is_null(),
            "lost {lost}: recomputed: {fixed}"
        );
        assert_eq!(versions(&p), before, "lost {lost}: the repair committed");
        p.run(&["doctor"]).ok();
        let status = p.run(&["status", "--json"]).ok().json();
        // Fresh against its upstream's re-recorded version (after a lost store, raw/a waits for its
        // source to be observed again: `upstream_stale`).
        let b = asset_state(&status, "stg/b");
        assert!(
            b == "fresh" || b == "upstream_stale",
            "lost {lost}: {status}"
        );
        // The source's observations live in the run store only: observed again, the CSV counts
        // as changed since the store's last observation, so raw/a (and what reads it) is
        // computed once more; then everything agrees.
        p.run(&["materialize"]).ok();
        assert_store_agrees_with_tables(&p, &format!("lost {lost}"));
    }
}
