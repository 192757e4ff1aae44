//! Workers (`assets worker`): processes that share the steps of queued runs through the run store.
//! Two workers spread one run's fan-out; a worker that dies after its Delta commit has the step
//! re-claimed and recorded from the commit, not recomputed; one that dies before it has the step
//! redone as the next attempt. (`workers_soak` kills workers on Postgres and S3 many times.)

use crate::common::*;
use std::process::{Child, Stdio};

/// root → m0..m{n-1} → sink; each m_i is 55 + i, computed in SQL or (`sleep`: that long) by a
/// command.
pub fn fan_out(n: usize, sleep: Option<&str>) -> Project {
    let mut files = vec![(
        "assets/root.yaml".to_string(),
        "key: root\nkind: sql\nquery: SELECT value AS v FROM generate_series(1, 10)\n".to_string(),
    )];
    for i in 0..n {
        let def = match sleep {
            None => format!("key: m{i}\nkind: sql\nquery: SELECT SUM(v) + {i} AS v FROM root\n"),
            Some(s) => format!(
                "key: m{i}\nkind: command\ndeps: [root]\ncommand: [sh, -c, 'sleep {s}; printf \"v\\n{}\\n\" > $SPINE_OUTPUT_DIR/m.csv']\nschema:\n  - v: int64\n",
                55 + i
            ),
        };
        files.push((format!("assets/m{i}.yaml"), def));
    }
    let union: Vec<String> = (0..n).map(|i| format!("SELECT v FROM m{i}")).collect();
    files.push((
        "assets/sink.yaml".to_string(),
        format!(
            "key: sink\nkind: sql\nquery: SELECT SUM(v) AS s, COUNT(*) AS n FROM ({})\n",
            union.join(" UNION ALL ")
        ),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Project::new(&refs)
}

/// `assets worker ARGS` in `dir`, its output captured.
pub fn worker(dir: &std::path::Path, args: &[&str], envs: &[(&str, String)]) -> Child {
    worker_to(dir, args, envs, Stdio::piped, Stdio::piped)
}

/// `assets worker ARGS` in `dir`, its output and errors where `out` and `err` say (a worker that
/// runs long must not write into a pipe nobody reads).
pub fn worker_to(
    dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, String)],
    out: impl FnOnce() -> Stdio,
    err: impl FnOnce() -> Stdio,
) -> Child {
    let mut args = args.to_vec();
    args.insert(0, "worker");
    let mut c = assets_in(dir, &args, envs);
    c.stdout(out()).stderr(err());
    c.spawn().expect("spawn a worker")
}

/// Waits for a `--json --exit-when-idle` worker; its report.
fn report(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "worker failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn queue(p: &Project) -> String {
    let out = p.run(&["materialize", "--queue", "--json"]);
    out.ok();
    out.json()["run_id"].as_str().expect("run id").to_string()
}

fn the_run(p: &Project, id: &str) -> serde_json::Value {
    p.run(&["run", id, "--json"]).ok().json()["run"].clone()
}

#[test]
fn two_workers_share_one_runs_fan_out() {
    let p = fan_out(16, Some("0.2"));
    let id = queue(&p);
    let args = ["-c", "1", "--poll", "50ms", "--exit-when-idle", "--json"];
    let (a, b) = (worker(p.path(), &args, &[]), worker(p.path(), &args, &[]));
    let (a, b) = (report(a), report(b));
    let (na, nb) = (a["steps"].as_u64().unwrap(), b["steps"].as_u64().unwrap());
    assert_eq!(na + nb, 18, "each step once: {a} {b}");
    assert!(na > 0 && nb > 0, "both workers took steps: {a} {b}");
    assert_eq!(
        a["runs_ended"].as_u64().unwrap() + b["runs_ended"].as_u64().unwrap(),
        1
    );
    let run = the_run(&p, &id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let rows = p
        .run(&["sql", "--json", "SELECT s, n FROM sink"])
        .ok()
        .json();
    // Each m_i = 55 + i.
    assert_eq!(rows, serde_json::json!([{"s": 16 * 55 + 120, "n": 16}]));
    // Every step started once.
    let started = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM spine.events WHERE kind = 'step_started'",
        ])
        .ok()
        .json();
    assert_eq!(started[0]["n"], 18, "{started}");
}

/// Which `_delta_log` versions a local table has.
fn versions(p: &Project, table: &str) -> usize {
    commits(p.path(), table)
}

/// How many commits (`_delta_log/*.json`) the local table `key` of the project at `dir` has.
pub fn commits(dir: &std::path::Path, key: &str) -> usize {
    std::fs::read_dir(dir.join("warehouse").join(key).join("_delta_log"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_worker_dead_after_its_commit_has_the_step_recorded_not_recomputed() {
    let p = diamond();
    let id = queue(&p);
    let crash = [("SPINE_FAULT", "crash_after_commit:stg/b".to_string())];
    let dead = worker(p.path(), &["-c", "1", "--poll", "50ms"], &crash);
    let out = dead.wait_with_output().unwrap();
    assert!(!out.status.success(), "the fault aborts the worker");
    assert_eq!(versions(&p, "stg/b"), 1, "its commit landed");
    let v = report(worker(
        p.path(),
        &["--poll", "50ms", "--exit-when-idle", "--json"],
        &[],
    ));
    assert_eq!(v["reclaimed"], 1, "{v}");
    assert_eq!(the_run(&p, &id)["status"], "succeeded");
    assert_eq!(versions(&p, "stg/b"), 1, "stg/b was not recomputed");
    let steps = p
        .run(&[
            "sql",
            "--json",
            "SELECT step_id, status, attempt FROM spine.steps ORDER BY step_id",
        ])
        .ok()
        .json();
    assert!(
        steps
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "succeeded" && s["attempt"] == 1),
        "{steps}"
    );
    let m = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n, MIN(delta_version) AS v FROM spine.materializations WHERE asset_key = 'stg/b'",
        ])
        .ok()
        .json();
    assert_eq!(m, serde_json::json!([{"n": 1, "v": 0}]));
}

#[test]
fn a_worker_dead_before_its_commit_has_the_step_redone_as_the_next_attempt() {
    let p = diamond();
    let id = queue(&p);
    let crash = [("SPINE_FAULT", "crash_before_commit:stg/b".to_string())];
    let dead = worker(p.path(), &["-c", "1", "--poll", "50ms"], &crash);
    assert!(!dead.wait_with_output().unwrap().status.success());
    assert_eq!(versions(&p, "stg/b"), 0, "nothing committed");
    let v = report(worker(
        p.path(),
        &["--poll", "50ms", "--exit-when-idle", "--json"],
        &[],
    ));
    assert_eq!(v["reclaimed"], 1, "{v}");
    assert_eq!(the_run(&p, &id)["status"], "succeeded");
    assert_eq!(versions(&p, "stg/b"), 1);
    let b = p
        .run(&[
            "sql",
            "--json",
            "SELECT status, attempt FROM spine.steps WHERE step_id = 'stg/b'",
        ])
        .ok()
        .json();
    assert_eq!(
        b,
        serde_json::json!([{"status": "succeeded", "attempt": 2}])
    );
}

/// Six commands that note when they start and end (in `times.log`) and take 0.4 s; tagged `tags`.
fn timed(toml: &str, tags: &str) -> Project {
    let mut files = vec![
        ("spine.toml".to_string(), toml.to_string()),
        (
            "assets/timed.sh".to_string(),
            "echo \"s $(date +%s%N)\" >> ../times.log\nsleep 0.4\necho \"e $(date +%s%N)\" >> ../times.log\nprintf 'v\\n1\\n' > \"$SPINE_OUTPUT_DIR/out.csv\"\n".to_string(),
        ),
    ];
    for i in 0..6 {
        files.push((
            format!("assets/t{i}.yaml"),
            format!("key: t{i}\nkind: command\ncommand: [sh, timed.sh]\ntags: [{tags}]\nschema:\n  - v: int64\n"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Project::new(&refs)
}

/// The most commands that ran at once, from `times.log`.
fn most_at_once(p: &Project) -> i32 {
    let log = std::fs::read_to_string(p.path().join("times.log")).unwrap();
    let mut marks: Vec<(u128, i32)> = log
        .lines()
        .map(|l| {
            let (kind, t) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), if kind == "s" { 1 } else { -1 })
        })
        .collect();
    // An end before a start at the same instant.
    marks.sort();
    let (mut now, mut most) = (0, 0);
    for (_, d) in marks {
        now += d;
        most = most.max(now);
    }
    most
}

fn drain(p: &Project, workers: usize) {
    let args = ["-c", "3", "--poll", "50ms", "--exit-when-idle", "--json"];
    let children: Vec<Child> = (0..workers).map(|_| worker(p.path(), &args, &[])).collect();
    for c in children {
        report(c);
    }
}

#[test]
fn a_tag_limit_holds_across_workers() {
    let p = timed(
        "[project]\nname = \"limits\"\n[limits.tags]\n\"warehouse=heavy\" = 2\n",
        "warehouse=heavy",
    );
    let id = queue(&p);
    drain(&p, 2);
    assert_eq!(the_run(&p, &id)["status"], "succeeded");
    // Two workers with three slots each could run all six at once.
    assert_eq!(
        most_at_once(&p),
        2,
        "at most two heavy steps, and two side by side"
    );
}

#[test]
fn a_runs_concurrency_tag_holds_across_workers() {
    let p = timed("[project]\nname = \"limits\"\n", "light");
    let out = p.run(&["materialize", "--queue", "--tag", "concurrency=1", "--json"]);
    out.ok();
    let id = out.json()["run_id"].as_str().unwrap().to_string();
    drain(&p, 2);
    assert_eq!(the_run(&p, &id)["status"], "succeeded");
    assert_eq!(most_at_once(&p), 1);
}

#[test]
fn a_bad_tag_limit_is_refused() {
    let p = timed(
        "[project]\nname = \"limits\"\n[limits.tags]\n\"warehouse=heavy\" = 0\n",
        "warehouse=heavy",
    );
    let out = p.run(&["worker", "--exit-when-idle"]);
    out.code(2);
    assert!(
        out.stderr.contains("E0104") && out.stderr.contains("limits.tags"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_higher_priority_run_is_taken_first() {
    let p = diamond();
    let ids: Vec<String> = ["0", "0", "10"]
        .iter()
        .map(|prio| {
            let out = p.run(&[
                "materialize",
                "--queue",
                "--force",
                "--tag",
                &format!("priority={prio}"),
                "--json",
            ]);
            out.ok();
            out.json()["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    report(worker(
        p.path(),
        &["-c", "1", "--poll", "50ms", "--exit-when-idle", "--json"],
        &[],
    ));
    let started = |id: &str| the_run(&p, id)["started_at"].as_str().unwrap().to_string();
    assert!(started(&ids[2]) < started(&ids[0]), "priority 10 first");
    assert!(started(&ids[0]) < started(&ids[1]), "then oldest first");
}

/// A step parked under workers leaves the run waiting; once signalled, a worker takes the run again
/// and the step runs with the payload.
#[test]
fn a_signalled_waiting_run_is_resumed_by_a_worker() {
    let p = gated();
    let id = queue(&p);
    let args = ["--poll", "50ms", "--exit-when-idle", "--json"];
    report(worker(p.path(), &args, &[]));
    assert_eq!(the_run(&p, &id)["status"], "waiting");
    p.run(&["signal", &id, "gate", "--payload", r#"{"by": "ana"}"#])
        .ok();
    let v = report(worker(p.path(), &args, &[]));
    assert_eq!(v["steps"], 2, "{v}");
    assert_eq!(the_run(&p, &id)["status"], "succeeded");
    let q = p
        .run(&["sql", "--json", "SELECT approved_by FROM after"])
        .ok()
        .json();
    assert_eq!(q[0]["approved_by"], "ana", "{q}");
}

#[test]
fn a_tag_limit_holds_in_one_materialize_too() {
    let p = timed(
        "[project]\nname = \"limits\"\n[limits.tags]\n\"warehouse=heavy\" = 2\n",
        "warehouse=heavy",
    );
    let v = p.run(&["materialize", "-c", "6", "--json"]).ok().json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(most_at_once(&p), 2, "six slots, two heavy steps at a time");
}
