//! Backfills through the CLI: a durable record chunked into runs, progress and status, a failed
//! partition retried by resume (and by `--failed`), cancel, and SIGKILL at random moments followed by a
//! resume, after which every partition is committed exactly once (the Delta logs' `txn` actions) with
//! its rows (read by an independent reader, Python `deltalake`).

use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const EVENTS: &str = "key: events
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-09}
query: SELECT n FROM (VALUES (1), (2), (3)) AS t(n)
";

const DAILY_TOTAL: &str = "key: daily_total
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-09}
query: SELECT SUM(n) AS total, COUNT(*) AS rows FROM events
";

fn project() -> Project {
    Project::new(&[
        ("assets/events.yaml", EVENTS),
        ("assets/daily_total.yaml", DAILY_TOTAL),
    ])
}

const DAYS: usize = 8;

/// Rows per partition of each table, read by Python `deltalake` (tables under each warehouse given).
const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for path in sys.argv[1:]:
    rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    per = {}
    for r in rows:
        per[r["partition_key"]] = per.get(r["partition_key"], 0) + 1
    out[path] = {"per_partition": per, "rows": rows}
sys.stdout.write(json.dumps(out, default=str))
sys.stdout.flush()
os._exit(0)
"#;

/// How many commits carried each `txn` app id (one per step key materialized) in a Delta table's log.
fn txn_counts(table: &std::path::Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(table.join("_delta_log")) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(app) = v["txn"]["appId"].as_str() {
                    *out.entry(app.to_string()).or_default() += 1;
                }
            }
        }
    }
    out
}

/// The project's one backfill: (id, state), if it was recorded.
fn backfill_id(p: &Project) -> Option<(String, String)> {
    let v = p.run(&["backfills", "--json"]).ok().json();
    let list = v.as_array().expect("a list");
    assert!(list.len() <= 1, "{v}");
    list.first().map(|b| {
        (
            b["backfill_id"].as_str().unwrap().to_string(),
            b["state"].as_str().unwrap().to_string(),
        )
    })
}

#[test]
fn a_backfill_is_recorded_chunked_and_run() {
    let p = project();
    let v = p
        .run(&[
            "backfill",
            "events",
            "daily_total",
            "--from",
            "2026-01-02",
            "--to",
            "2026-01-07",
            "--per-run",
            "4",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["steps"], 12, "6 days of two assets: {v}");
    assert_eq!(v["done"], 12);
    let chunks = v["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 2, "4 + 2 days: {v}");
    assert_eq!(
        (&chunks[0]["first"], &chunks[0]["last"], &chunks[0]["steps"]),
        (
            &serde_json::json!("2026-01-02"),
            &serde_json::json!("2026-01-05"),
            &serde_json::json!(8)
        )
    );
    let id = v["backfill_id"].as_str().unwrap();
    // The record and its runs are queryable; every run succeeded.
    let runs = p
        .run(&[
            "sql",
            "--json",
            "SELECT r.status, COUNT(*) AS n FROM spine.backfill_runs b JOIN spine.runs r ON r.run_id = b.run_id GROUP BY r.status",
        ])
        .ok()
        .json();
    assert_eq!(runs, serde_json::json!([{"status": "succeeded", "n": 2}]));
    // `status` by a prefix of the id, as text.
    let s = p
        .run(&["backfill", "status", &id[..14]])
        .ok()
        .stdout
        .clone();
    assert!(
        s.contains("succeeded") && s.contains("12 of 12 step(s) done"),
        "{s}"
    );
    assert!(s.contains("2026-01-02..2026-01-05"), "{s}");
    let t = python_json(
        READER,
        &[p.path().join("warehouse/events").display().to_string()],
    );
    let per = &t[p.path().join("warehouse/events").display().to_string()]["per_partition"];
    assert_eq!(
        per,
        &serde_json::json!({"2026-01-02": 3, "2026-01-03": 3, "2026-01-04": 3, "2026-01-05": 3, "2026-01-06": 3, "2026-01-07": 3})
    );
    // A backfill re-materializes what it names even when fresh; `--missing` takes only what is missing.
    let again = p
        .run(&["backfill", "events", "--missing", "--json"])
        .ok()
        .json();
    assert_eq!(again["steps"], 2, "2026-01-01 and 2026-01-08: {again}");
    let none = p
        .run(&["backfill", "events", "--missing"])
        .ok()
        .stdout
        .clone();
    assert!(none.contains("nothing to backfill"), "{none}");
    let list = p.run(&["backfills"]).ok().stdout.clone();
    assert!(
        list.contains(id) && list.contains("2026-01-02..2026-01-07"),
        "{list}"
    );
}

const REGIONS: &str = "key: regions
kind: sql
partitions:
  static: [eu, us, apac]
query: SELECT CAST(CASE WHEN '{{ partition_key }}' = 'us' THEN 'not a number' ELSE '1' END AS INT) AS n
";

#[test]
fn a_failed_partition_is_retried_by_resume_and_nothing_else_is() {
    let p = Project::new(&[("assets/regions.yaml", REGIONS)]);
    let v = p
        .run(&["backfill", "regions", "--per-run", "1", "--json"])
        .code(1)
        .json();
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(
        (&v["done"], &v["failed"]),
        (&serde_json::json!(2), &serde_json::json!(1))
    );
    assert_eq!(v["failures"][0][0], "regions[us]", "{v}");
    let id = v["backfill_id"].as_str().unwrap().to_string();
    // Status and partitions say which partition failed.
    let parts = p.run(&["partitions", "regions", "--json"]).ok().json();
    let states: Vec<(String, String)> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["first"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("eu".to_string(), "fresh".to_string()),
            ("us".into(), "failed".into()),
            ("apac".into(), "fresh".into())
        ]
    );
    let q = p
        .run(&[
            "sql",
            "--json",
            "SELECT partition_key, state, delta_version IS NOT NULL AS stored FROM spine.partitions ORDER BY partition_key",
        ])
        .ok()
        .json();
    assert_eq!(
        q,
        serde_json::json!([
            {"partition_key": "apac", "state": "fresh", "stored": true},
            {"partition_key": "eu", "state": "fresh", "stored": true},
            {"partition_key": "us", "state": "failed", "stored": false}
        ])
    );
    let st = p.run(&["status", "--json"]).ok().json();
    assert_eq!(
        st[0]["partitions"],
        serde_json::json!({"total": 3, "fresh": 2, "stale": 0, "missing": 0, "failed": 1, "rows": 2}),
        "{st}"
    );
    let text = p.run(&["status"]).ok().stdout.clone();
    assert!(
        text.contains("(2/3 fresh, 1 failed)") && text.contains("of 3 partitions: 1 failed"),
        "{text}"
    );
    // `--failed` finds exactly the failed partition.
    let f = p
        .run(&["backfill", "regions", "--failed", "--queue", "--json"])
        .ok()
        .json();
    assert_eq!(f["steps"], 1, "{f}");
    assert_eq!(f["state"], "queued");
    p.run(&["backfill", "cancel", f["backfill_id"].as_str().unwrap()])
        .ok();

    // Fix the query; resume runs only the failed chunk again.
    p.write(
        "assets/regions.yaml",
        &REGIONS.replace("'not a number'", "'2'"),
    );
    let r = p.run(&["backfill", "resume", &id, "--json"]).ok().json();
    assert_eq!(r["state"], "succeeded", "{r}");
    assert_eq!(r["done"], 3);
    let runs: Vec<i64> = r["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["runs"].as_i64().unwrap())
        .collect();
    assert_eq!(runs, vec![1, 2, 1], "only the 'us' chunk ran again: {r}");
    let m = p
        .run(&[
            "sql",
            "--json",
            "SELECT step_id, COUNT(*) AS n FROM spine.materializations GROUP BY step_id ORDER BY step_id",
        ])
        .ok()
        .json();
    assert_eq!(
        m,
        serde_json::json!([
            {"step_id": "regions[apac]", "n": 1},
            {"step_id": "regions[eu]", "n": 1},
            {"step_id": "regions[us]", "n": 1}
        ])
    );
}

#[test]
fn a_cancelled_backfill_runs_nothing_until_resumed() {
    let p = project();
    let q = p
        .run(&["backfill", "events", "--per-run", "2", "--queue", "--json"])
        .ok()
        .json();
    let id = q["backfill_id"].as_str().unwrap().to_string();
    assert_eq!(q["chunks"].as_array().unwrap().len(), DAYS / 2);
    let c = p.run(&["backfill", "cancel", &id, "--json"]).ok().json();
    assert_eq!(c["state"], "cancelled", "{c}");
    // Its runs were cancelled while queued: `execute` finds nothing to run.
    let e = p.run(&["execute"]).ok().stderr.clone();
    assert!(e.contains("no queued run"), "{e}");
    assert!(!p.path().join("warehouse/events").exists());
    let r = p.run(&["backfill", "resume", &id, "--json"]).ok().json();
    assert_eq!(
        (&r["state"], &r["done"]),
        (&serde_json::json!("succeeded"), &serde_json::json!(DAYS))
    );
    // Unknown ids are bad input.
    let bad = p.run(&["backfill", "status", "nope"]);
    bad.code(2);
    assert!(
        bad.stderr
            .contains("no backfill has the id or prefix 'nope'"),
        "{}",
        bad.stderr
    );
    let bad = p.run(&["backfill", "regions"]);
    bad.code(2);
    let bad = p.run(&[
        "backfill",
        "daily_total",
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-03",
    ]);
    bad.code(2);
    assert!(bad.stderr.contains("E0411"), "{}", bad.stderr);
}

/// xorshift64: deterministic kill points.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_backfill_killed_at_random_moments_resumes_to_each_partition_committed_once() {
    const TRIALS: usize = 20;
    let args = ["backfill", "events", "daily_total", "--per-run", "3"];
    // How long an uninterrupted backfill takes here: kill points are spread over it. The shorter of
    // two probes: a first, cold run can take twice as long, and kills spread over that land after
    // the end (17 of 20 once in CI).
    let mut full = u64::MAX;
    for _ in 0..2 {
        let probe = project();
        let t0 = Instant::now();
        probe.run(&args).ok();
        full = full.min(t0.elapsed().as_millis().max(50) as u64);
    }
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut projects = Vec::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for trial in 0..TRIALS {
        let p = project();
        let delay = next(&mut rng) % full;
        let mut child = bin()
            .args(args)
            .current_dir(p.path())
            .env_remove("SPINE_STATE_URL")
            .env_remove("SPINE_WAREHOUSE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn assets");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL; it may have finished already
        let _ = child.wait();
        match backfill_id(&p) {
            Some((id, state)) => {
                *states.entry(state).or_default() += 1;
                let r = p.run(&["backfill", "resume", &id, "--json"]);
                let v = r.ok().json();
                assert_eq!(
                    v["state"], "succeeded",
                    "trial {trial} (killed at {delay} ms): {v}"
                );
            }
            // Killed before the backfill was recorded: nothing of it exists, so run it again.
            None => {
                *states.entry("not recorded".into()).or_default() += 1;
                assert!(!p.path().join("warehouse/events").exists(), "trial {trial}");
                p.run(&args).ok();
            }
        }
        for table in ["events", "daily_total"] {
            let counts = txn_counts(&p.path().join("warehouse").join(table));
            assert_eq!(
                counts.len(),
                DAYS,
                "trial {trial} ({delay} ms): {table}: {counts:?}"
            );
            assert!(
                counts.values().all(|n| *n == 1),
                "trial {trial} (killed at {delay} ms): a partition of {table} was committed more than once: {counts:?}"
            );
        }
        projects.push(p);
    }
    // The kills landed mid-backfill, not only before or after it.
    let cut =
        TRIALS - states.get("succeeded").unwrap_or(&0) - states.get("not recorded").unwrap_or(&0);
    eprintln!("backfill {full} ms uncut; states found after the kills: {states:?}");
    assert!(
        cut >= TRIALS / 4,
        "too few kills interrupted a backfill: {states:?}"
    );
    let mut tables = Vec::new();
    for p in &projects {
        for t in ["events", "daily_total"] {
            tables.push(p.path().join("warehouse").join(t).display().to_string());
        }
    }
    let read = python_json(READER, &tables);
    for t in &tables {
        let per = read[t]["per_partition"].as_object().unwrap();
        assert_eq!(per.len(), DAYS, "{t}: {per:?}");
        let want = if t.ends_with("events") { 3 } else { 1 };
        assert!(per.values().all(|n| n == want), "{t}: {per:?}");
        if t.ends_with("daily_total") {
            for r in read[t]["rows"].as_array().unwrap() {
                assert_eq!(
                    (&r["total"], &r["rows"]),
                    (&serde_json::json!(6), &serde_json::json!(3)),
                    "{t}: {r}"
                );
            }
        }
    }
}

const FLAKY_DAYS: &str = "key: days
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-08}
query: SELECT CAST(CASE WHEN '{{ partition_key }}' = '2026-01-02' THEN 'x' ELSE '1' END AS INT) AS n
";

const WEEKS: &str = "key: weeks
kind: sql
partitions:
  weekly: {start: 2025-12-29, end: 2026-01-12}
query: SELECT SUM(n) AS total FROM days
";

#[test]
fn a_later_chunk_skips_what_reads_a_failed_partition_and_resume_runs_it() {
    let p = Project::new(&[
        ("assets/days.yaml", FLAKY_DAYS),
        ("assets/weeks.yaml", WEEKS),
    ]);
    let v = p
        .run(&["backfill", "days", "weeks", "--per-run", "1", "--json"])
        .code(1)
        .json();
    assert_eq!(v["state"], "failed", "{v}");
    // The week of 2025-12-29 reads the failed 2026-01-02 (in an earlier run): skipped, not computed
    // from the days that exist; the next week runs.
    let steps = p
        .run(&[
            "sql",
            "--json",
            "SELECT step_id, status, reason FROM spine.steps WHERE asset_key = 'weeks' ORDER BY step_id",
        ])
        .ok()
        .json();
    assert_eq!(steps[0]["step_id"], "weeks[2025-12-29]");
    assert_eq!(steps[0]["status"], "skipped", "{steps}");
    assert_eq!(
        steps[0]["reason"],
        "upstream 'days[2026-01-02]' failed in this backfill"
    );
    assert_eq!(steps[1]["status"], "succeeded", "{steps}");
    assert!(!p
        .run(&["sql", "SELECT * FROM weeks"])
        .ok()
        .stdout
        .contains("2025-12-29"));
    p.write("assets/days.yaml", &FLAKY_DAYS.replace("'x'", "'2'"));
    let id = v["backfill_id"].as_str().unwrap();
    let r = p.run(&["backfill", "resume", id, "--json"]).ok().json();
    assert_eq!(
        (&r["state"], &r["done"]),
        (&serde_json::json!("succeeded"), &serde_json::json!(9))
    );
    let total = p
        .run(&[
            "sql",
            "--json",
            "SELECT total FROM weeks WHERE partition_key = '2025-12-29'",
        ])
        .ok()
        .json();
    assert_eq!(
        total,
        serde_json::json!([{"total": 5}]),
        "1 + 2 + 1 + 1 for Jan 1-4"
    );
}

/// Ctrl-C (SIGINT) during a backfill cancels the backfill, not only its current run: it ends
/// `cancelled`, and a daemon pass afterwards runs none of its queued runs (issue 27, defect 3).
#[test]
fn ctrl_c_cancels_the_backfill_and_a_daemon_does_not_finish_it() {
    let p = Project::new(&[(
        "assets/slow.yaml",
        "key: slow
kind: command
partitions:
  daily: {start: 2026-01-01, end: 2026-01-09}
command: [sh, -c, 'sleep 1; printf \"n\\n1\\n\" > \"$SPINE_OUTPUT_DIR/o.csv\"']
",
    )]);
    let child = bin()
        .args(["backfill", "slow", "--per-run", "2"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_running(&p, "slow[2026-01-01]");
    // Resuming a backfill a live process runs is refused before anything is announced or changed.
    let (id, _) = backfill_id(&p).expect("recorded");
    let busy = p.run(&["backfill", "resume", &id]);
    busy.code(2);
    assert!(busy.stderr.contains("E0415"), "{}", busy.stderr);
    assert!(!busy.stdout.contains("resuming"), "{}", busy.stdout);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted: cancelling the backfill"),
        "{stderr}"
    );
    let (id, state) = backfill_id(&p).expect("recorded");
    assert_eq!(state, "cancelled");
    let before = materialized(&p);
    assert!(
        before < DAYS as i64,
        "{before} partitions done before the cancel landed"
    );
    p.run(&["daemon", "--once"]).ok();
    assert_eq!(
        materialized(&p),
        before,
        "the daemon ran the cancelled backfill's runs"
    );
    assert_eq!(backfill_id(&p).unwrap().1, "cancelled");
    // Resuming is deliberate, and finishes it.
    let r = p.run(&["backfill", "resume", &id, "--json"]).ok().json();
    assert_eq!(r["state"], "succeeded", "{r}");
}

/// A backfill killed between a partition's commit and its check results, then resumed: recovery runs
/// the checks of each landed commit, so every version is either published with passing checks or
/// held back naming the checks that failed — never "held back by failed checks ()" and fresh
/// (issue 27, defect 4). 20 trials, each killed at the first commit of a random chunk.
#[test]
fn a_kill_between_commit_and_checks_leaves_no_unchecked_version() {
    let checked = "key: checked
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-09}
query: >
  SELECT n FROM (VALUES (1), (2), (3)) AS t(n)
  WHERE n < 3 OR '{{ partition_key }}' >= '2026-01-05'
checks:
  - expression: n < 3
";
    let mut rng = Rng::seeded("a_kill_between_commit_and_checks_leaves_no_unchecked_version");
    for trial in 0..20 {
        let p = Project::new(&[("assets/checked.yaml", checked)]);
        // Partitions before the kill point succeed, one chunk at a time.
        let skip = rng.below(4);
        if skip > 0 {
            let to = format!("2026-01-0{}", skip * 2);
            p.run(&[
                "backfill",
                "checked",
                "--from",
                "2026-01-01",
                "--to",
                &to,
                "--per-run",
                "2",
            ]);
        }
        let crashed = run_in_env(
            p.path(),
            &["backfill", "checked", "--per-run", "2", "-c", "2"],
            &[("SPINE_FAULT", "crash_after_commit:checked".into())],
        );
        assert_ne!(crashed.code, 0, "trial {trial}: the fault did not fire");
        let (id, _) = backfill_id_of_last(&p);
        p.run(&["backfill", "resume", &id]);
        let rows = p
            .run(&[
                "sql",
                "--json",
                "SELECT m.partition_key AS p, m.published AS published, \
                 COUNT(c.check_name) AS checks, SUM(CASE WHEN c.passed THEN 0 ELSE 1 END) AS failed \
                 FROM spine.materializations m LEFT JOIN spine.check_results c \
                 ON c.materialization_id = m.id GROUP BY m.id, m.partition_key, m.published",
            ])
            .ok()
            .json();
        for r in rows.as_array().unwrap() {
            let day = r["p"].as_str().unwrap();
            let bad_day = day >= "2026-01-05";
            assert_eq!(
                r["checks"], 1,
                "trial {trial}: {day} has no check result: {rows}"
            );
            assert_eq!(
                (r["published"].as_bool(), r["failed"].as_i64()),
                (Some(!bad_day), Some(i64::from(bad_day))),
                "trial {trial}: {day}: {rows}"
            );
        }
        let status = p.run(&["status"]).stdout;
        assert!(
            !status.contains("failed checks ()"),
            "trial {trial}: {status}"
        );
    }
}

/// How many materializations the run store holds.
fn materialized(p: &Project) -> i64 {
    p.run(&[
        "sql",
        "--json",
        "SELECT COUNT(*) AS n FROM spine.materializations",
    ])
    .ok()
    .json()[0]["n"]
        .as_i64()
        .unwrap()
}

/// The newest backfill: (id, state).
fn backfill_id_of_last(p: &Project) -> (String, String) {
    let v = p.run(&["backfills", "--json"]).ok().json();
    let b = &v.as_array().expect("a list")[0];
    (
        b["backfill_id"].as_str().unwrap().to_string(),
        b["state"].as_str().unwrap().to_string(),
    )
}

/// `backfill --fail-fast` stops at the first failed partition and leaves the backfill cancelled,
/// later chunks not run; `resume` continues it (issue 27).
#[test]
fn fail_fast_stops_a_backfill_at_its_first_failure() {
    let p = Project::new(&[(
        "assets/events.yaml",
        "key: events
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-09}
query: SELECT CAST(CASE WHEN '{{ partition_key }}' = '2026-01-01' THEN 'x' ELSE '1' END AS INT) AS n
",
    )]);
    let r = p.run(&[
        "backfill",
        "events",
        "--per-run",
        "2",
        "--fail-fast",
        "--json",
    ]);
    r.code(1);
    let (id, state) = backfill_id(&p).expect("recorded");
    assert_eq!(state, "cancelled", "{}", r.stdout);
    let done = materialized(&p);
    assert!(done < 7, "{done} partitions ran after the failure");
    let again = p.run(&["backfill", "resume", &id, "--json"]);
    again.code(1);
    assert_eq!(again.json()["done"], 7, "{}", again.stdout);
}

/// A date range over a daily asset and its weekly rollup applies per asset (issue 27, defect 2): the
/// days in the range, and the weeks that overlap it whose days are all planned with them. The week
/// reaching back before the range (its other days are not in it) is left out rather than computed
/// from one day; a range of nonsense is still E0411.
#[test]
fn a_date_range_applies_per_asset_across_daily_and_weekly() {
    let p = Project::new(&[
        (
            "assets/days.yaml",
            "key: days\nkind: sql\npartitions:\n  daily: {start: 2026-10-26, end: 2026-12-05}\n\
             query: SELECT 1 AS n\n",
        ),
        (
            "assets/weeks.yaml",
            "key: weeks\nkind: sql\npartitions:\n  weekly: {start: 2026-10-26, end: 2026-12-07}\n\
             query: SELECT SUM(n) AS total, COUNT(*) AS days FROM days\n",
        ),
    ]);
    let v = p
        .run(&[
            "backfill",
            "days",
            "weeks",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["state"], "succeeded", "{v}");
    let done = p
        .run(&[
            "sql",
            "--json",
            "SELECT asset_key AS k, COUNT(*) AS n, MIN(partition_key) AS first, MAX(partition_key) AS last \
             FROM spine.materializations GROUP BY asset_key ORDER BY asset_key",
        ])
        .ok()
        .json();
    assert_eq!(
        done,
        serde_json::json!([
            {"k": "days", "n": 30, "first": "2026-11-01", "last": "2026-11-30"},
            {"k": "weeks", "n": 4, "first": "2026-11-02", "last": "2026-11-23"}
        ])
    );
    // Every planned week read its seven days.
    let weeks = p
        .run(&["sql", "--json", "SELECT DISTINCT total, days FROM weeks"])
        .ok()
        .json();
    assert_eq!(weeks, serde_json::json!([{"total": 7, "days": 7}]));
    // Week-aligned dates plan no week whose days reach past the range either.
    let v = p
        .run(&[
            "backfill",
            "days",
            "weeks",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-23",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["state"], "succeeded", "{v}");
    let weeks = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM spine.materializations WHERE asset_key = 'weeks'",
        ])
        .ok()
        .json();
    assert_eq!(
        weeks,
        serde_json::json!([{"n": 7}]),
        "11-02, 11-09, 11-16 again"
    );
    let r = p.run(&[
        "backfill",
        "days",
        "weeks",
        "--from",
        "soon",
        "--to",
        "2026-11-30",
    ]);
    r.code(2);
    assert!(r.stderr.contains("E0411"), "{}", r.stderr);
}
