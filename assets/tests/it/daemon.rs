//! `assets daemon`, `assets schedules`, `assets ticks` through the real binary: bad schedules are
//! refused with E0220 naming the file; one daemon per project (E0416); SIGTERM stops it cleanly and
//! frees the lock; the daemon runs queued backfills and queued runs. (Ticks over a simulated week are
//! tested in the engine, on a manual clock.)

use crate::common::*;
use std::time::{Duration, Instant};

const ORDERS: &str = "key: orders
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-06}
query: SELECT 1 AS n
";

fn project(schedule: &str) -> Project {
    Project::new(&[
        ("assets/orders.yaml", ORDERS),
        ("schedules/nightly.yaml", schedule),
    ])
}

const NIGHTLY: &str = "name: nightly\ncron: \"0 2 * * *\"\ntimezone: Europe/Berlin\nselect: orders\npartition: latest\n";

#[test]
fn bad_schedules_are_refused_naming_the_file() {
    for (yaml, says) in [
        ("name: n\ncron: \"0 2 * *\"\n", "has 4 fields"),
        (
            "name: n\ncron: \"0 2 * * *\"\ntimezone: Europe/Atlantis\n",
            "unknown timezone 'Europe/Atlantis'",
        ),
        (
            "name: n\ncron: \"0 2 * * *\"\nselect: ordrs\n",
            "did you mean 'orders'",
        ),
        ("name: n\ncron: [0, 2]\n", "invalid type"),
    ] {
        let p = project(yaml);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0220")
                && r.stderr.contains("schedules/nightly.yaml")
                && r.stderr.contains(says),
            "{yaml}: {}",
            r.stderr
        );
        // Nothing was created.
        assert!(!p.path().join(".spine").exists());
    }
    let p = project(NIGHTLY);
    p.write("schedules/again.yaml", NIGHTLY);
    let r = p.run(&["schedules"]);
    r.code(2);
    assert!(
        r.stderr.contains("two schedules are named 'nightly'"),
        "{}",
        r.stderr
    );
}

#[test]
fn schedules_and_ticks_are_listed() {
    let p = project(NIGHTLY);
    let v = p.run(&["schedules", "--json"]).ok().json();
    assert_eq!(v[0]["schedule"]["name"], "nightly", "{v}");
    assert_eq!(v[0]["schedule"]["partition"], "latest");
    assert!(
        v[0]["next_tick"].as_str().unwrap().contains("T01:00:00")
            || v[0]["next_tick"].as_str().unwrap().contains("T00:00:00"),
        "02:00 Berlin is 01:00 or 00:00 UTC: {v}"
    );
    assert!(v[0]["last_tick"].is_null());
    p.run(&["daemon", "--once"]).ok();
    let t = p.run(&["ticks", "--json"]).ok().json();
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t[0]["status"], "started");
    let q = p
        .run(&[
            "sql",
            "--json",
            "SELECT schedule, status FROM spine.schedule_ticks",
        ])
        .ok()
        .json();
    assert_eq!(
        q,
        serde_json::json!([{"schedule": "nightly", "status": "started"}])
    );
    let r = p.run(&["ticks", "--schedule", "nope"]);
    r.code(2);
    assert!(
        r.stderr.contains("no schedule or sensor is named 'nope'"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_daemon_runs_queued_backfills_and_runs() {
    let p = project(NIGHTLY);
    let b = p
        .run(&["backfill", "orders", "--per-run", "2", "--queue", "--json"])
        .ok()
        .json();
    let id = b["backfill_id"].as_str().unwrap().to_string();
    p.run(&[
        "materialize",
        "orders",
        "--partition",
        "2026-01-05",
        "--queue",
    ])
    .ok();
    let out = p.run(&["daemon", "--once"]).ok().stdout.clone();
    assert!(out.contains(&format!("backfill {id} ran")), "{out}");
    let s = p.run(&["backfill", "status", &id, "--json"]).ok().json();
    assert_eq!(s["state"], "succeeded", "{s}");
    let runs = p.run(&["runs", "--json"]).ok().json();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "succeeded"),
        "{runs}"
    );
    let mut by: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["launched_by"].as_str().unwrap().to_string())
        .collect();
    by.sort();
    let backfill = format!("backfill:{id}");
    assert_eq!(
        by.iter().filter(|b| **b == backfill).count(),
        3,
        "5 days, 2 per run: {by:?}"
    );
    assert!(
        by.iter().filter(|b| b.starts_with("cli:")).count() == 1,
        "{by:?}"
    );
    let table = p.run(&["runs"]).ok().stdout.clone();
    assert!(
        table.contains("LAUNCHED BY") && table.contains(&backfill),
        "{table}"
    );
}

#[test]
fn the_daemon_resumes_a_backfill_whose_process_died() {
    let p = project(NIGHTLY);
    // The backfill's process aborts right after its first commit (before recording it).
    let r = run_in_env(
        p.path(),
        &["backfill", "orders", "--per-run", "2"],
        &[("SPINE_FAULT", "crash_after_commit:orders".into())],
    );
    assert_ne!(r.code, 0);
    let list = p.run(&["backfills", "--json"]).ok().json();
    assert_eq!(list[0]["state"], "interrupted", "{list}");
    let out = p.run(&["daemon", "--once"]).ok().stdout.clone();
    assert!(out.contains("ran"), "{out}");
    let list = p.run(&["backfills", "--json"]).ok().json();
    assert_eq!(
        (&list[0]["state"], &list[0]["done"]),
        (&serde_json::json!("succeeded"), &serde_json::json!(5))
    );
    // The commit that landed before the abort was recorded, not made again: one per day.
    let m = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n, COUNT(DISTINCT step_id) AS d FROM spine.materializations",
        ])
        .ok()
        .json();
    assert_eq!(m, serde_json::json!([{"n": 5, "d": 5}]));
}

#[test]
fn one_daemon_per_project_and_sigterm_stops_it_and_frees_the_lock() {
    let p = project(NIGHTLY);
    let mut child = bin()
        .args(["daemon", "--interval", "200ms"])
        .current_dir(p.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    // Wait until it holds the lock.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = p.run(&["ticks", "--json"]);
        if r.code == 0 && r.json().as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon never ticked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = p.run(&["daemon", "--once"]);
    second.code(2);
    assert!(second.stderr.contains("E0416"), "{}", second.stderr);
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "SIGTERM did not stop the daemon"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Its lock is free: another daemon starts at once.
    p.run(&["daemon", "--once"]).ok();
}

#[test]
fn automation_explain_says_why_and_the_daemon_acts_on_it() {
    let p = Project::new(&[
        (
            "assets/raw.yaml",
            "key: raw\nkind: sql\nquery: SELECT 1 AS n\n",
        ),
        (
            "assets/total.yaml",
            "key: total\nkind: sql\nautomation: eager\nquery: SELECT SUM(n) AS s FROM raw\n",
        ),
    ]);
    let out = p
        .run(&["automation", "explain", "total"])
        .ok()
        .stdout
        .clone();
    assert!(
        out.contains("would not materialize it now")
            && out.contains("upstream 'raw' was never materialized"),
        "{out}"
    );
    p.run(&["materialize", "raw"]).ok();
    let v = p
        .run(&["automation", "explain", "total", "--json"])
        .ok()
        .json();
    assert_eq!(v["evaluation"]["value"], true, "{v}");
    let d = p.run(&["daemon", "--once"]).ok().stdout.clone();
    assert!(
        d.contains("tick automation") && d.contains("conditions hold for total"),
        "{d}"
    );
    let v = p
        .run(&["automation", "explain", "total", "--json"])
        .ok()
        .json();
    assert_eq!(
        (&v["evaluation"]["value"], &v["evaluation"]["reason"]),
        (&serde_json::json!(false), &serde_json::json!("fresh"))
    );
    let r = p.run(&["automation", "explain", "raw"]);
    r.code(2);
    assert!(r.stderr.contains("E0418"), "{}", r.stderr);
    p.write(
        "assets/bad.yaml",
        "key: bad\nkind: sql\nautomation: {or: eager}\nquery: SELECT 1 AS n\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0211")
            && r.stderr.contains("assets/bad.yaml")
            && r.stderr.contains("non-empty list"),
        "{}",
        r.stderr
    );
}

/// A sensor through the binary: `assets sensors` counts the new objects, `daemon --once` launches
/// one run for them (a dynamic partition each), after which nothing is new; a bad sensor is E0221.
#[test]
fn a_sensor_runs_what_landed_once() {
    let p = Project::new(&[
        (
            "assets/files.yaml",
            "key: files\nkind: sql\npartitions: {dynamic: landed}\nquery: SELECT '{{ partition_key }}' AS f\n",
        ),
        (
            "sensors/landed.yaml",
            "name: landed\nobjects: landing/\npattern: \"*.json\"\nadd_partitions: landed\n",
        ),
        ("landing/2026-01-01.json", "{}"),
        ("landing/2026-01-02.json", "{}"),
        ("landing/readme.md", "-"),
    ]);
    let s = p.run(&["sensors", "--json"]).ok().json();
    assert_eq!(
        (&s[0]["objects_now"], &s[0]["new"]),
        (&2.into(), &2.into()),
        "{s}"
    );
    let out = p.run(&["daemon", "--once"]).ok().stdout.clone();
    assert!(out.contains("tick landed"), "{out}");
    let rows = p
        .run(&["sql", "--json", "SELECT f FROM files ORDER BY f"])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([{"f": "2026-01-01"}, {"f": "2026-01-02"}])
    );
    let s = p.run(&["sensors", "--json"]).ok().json();
    assert_eq!(s[0]["new"], 0, "{s}");
    let t = p
        .run(&["ticks", "--schedule", "landed", "--json"])
        .ok()
        .json();
    assert_eq!(t.as_array().unwrap().len(), 1, "{t}");
    p.write(
        "sensors/landed.yaml",
        "name: landed\nobjects: landing/\nadd_partitions: nope\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0221") && r.stderr.contains("sensors/landed.yaml"),
        "{}",
        r.stderr
    );
}

/// `schedules preview NAME` lists the next ticks on the schedule's own clock with what each would
/// run; `schedules fire NAME` runs a tick now (or queues it), recorded as `fired` and launched by
/// the schedule, without moving the schedule's cursor (issue 27 habits).
#[test]
fn a_schedule_is_previewed_and_fired() {
    let p = project(NIGHTLY);
    let v = p
        .run(&["schedules", "preview", "nightly", "-n", "3", "--json"])
        .ok()
        .json();
    let ticks = v.as_array().unwrap();
    assert_eq!(ticks.len(), 3, "{v}");
    for t in ticks {
        let at = t["at"].as_str().unwrap();
        assert!(at.contains("T02:00:00+0"), "02:00 on Berlin's clock: {at}");
        assert_eq!(t["steps"], serde_json::json!(["orders[2026-01-05]"]), "{v}");
    }
    let text = p
        .run(&["schedules", "preview", "nightly"])
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains("Europe/Berlin") && text.contains("orders[2026-01-05]"),
        "{text}"
    );
    let r = p
        .run(&["schedules", "fire", "nightly", "--json"])
        .ok()
        .json();
    assert_eq!(r["status"], "succeeded", "{r}");
    let q = p
        .run(&["schedules", "fire", "nightly", "--queue", "--json"])
        .ok()
        .json();
    let queued = q["run_id"].as_str().unwrap().to_string();
    let runs = p.run(&["runs", "--json"]).ok().json();
    for r in runs.as_array().unwrap() {
        let by = r["launched_by"].as_str().unwrap();
        assert!(by.starts_with("schedule:nightly fired by cli:"), "{by}");
    }
    let ticks = p.run(&["ticks", "--json"]).ok().json();
    assert!(
        ticks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "fired"),
        "{ticks}"
    );
    // Fired ticks are not the cursor: the daemon's first pass still only starts the schedule, and
    // runs the queued fired run.
    p.run(&["daemon", "--once"]).ok();
    let ticks = p.run(&["ticks", "--json"]).ok().json();
    assert!(
        ticks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["status"] == "started"),
        "{ticks}"
    );
    let run = p.run(&["run", &queued, "--json"]).ok().json();
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    let r = p.run(&["schedules", "fire", "nope"]);
    r.code(2);
    assert!(r.stderr.contains("E0220"), "{}", r.stderr);
}

/// Runs carry the tags they were launched with (`--tag KEY=VALUE` on materialize and backfill),
/// shown by `runs` and `run`; a tag that is not KEY=VALUE is E0113 (issue 27 habits).
#[test]
fn runs_carry_their_tags() {
    let p = project(NIGHTLY);
    p.run(&[
        "materialize",
        "orders",
        "--partition",
        "2026-01-01",
        "--tag",
        "team=growth",
        "--tag",
        "ticket=OPS-12",
    ])
    .ok();
    p.run(&[
        "backfill",
        "orders",
        "--per-run",
        "5",
        "--tag",
        "why=restatement",
    ])
    .ok();
    let runs = p.run(&["runs", "--json"]).ok().json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        runs[1]["tags"],
        serde_json::json!({"team": "growth", "ticket": "OPS-12"})
    );
    assert_eq!(runs[0]["tags"], serde_json::json!({"why": "restatement"}));
    let table = p.run(&["runs"]).ok().stdout.clone();
    assert!(
        table.contains("TAGS") && table.contains("team=growth ticket=OPS-12"),
        "{table}"
    );
    let id = runs[1]["run_id"].as_str().unwrap();
    let shown = p.run(&["run", id]).ok().stdout.clone();
    assert!(
        shown.contains("tags      team=growth ticket=OPS-12"),
        "{shown}"
    );
    let r = p.run(&["materialize", "orders", "--tag", "oops"]);
    r.code(2);
    assert!(r.stderr.contains("E0113"), "{}", r.stderr);
}

/// A run waiting for a signal is left alone by the daemon until the signal comes; then a pass
/// resumes it, with the payload.
#[test]
fn the_daemon_resumes_a_signalled_waiting_run() {
    let p = gated();
    let v = p.run(&["materialize", "--json"]).json();
    assert_eq!(v["status"], "waiting", "{v}");
    let run = v["run_id"].as_str().unwrap().to_string();
    let status = || p.run(&["run", &run, "--json"]).ok().json()["run"]["status"].clone();
    p.run(&["daemon", "--once"]).ok();
    assert_eq!(status(), "waiting", "not signalled: left alone");
    p.run(&["signal", &run, "gate", "--payload", r#"{"by": "ana"}"#])
        .ok();
    p.run(&["daemon", "--once"]).ok();
    assert_eq!(status(), "succeeded");
    let q = p
        .run(&["sql", "--json", "SELECT approved_by FROM after"])
        .ok()
        .json();
    assert_eq!(q[0]["approved_by"], "ana", "{q}");
}
