//! Workers killed with SIGKILL again and again, on a Postgres run store (a fresh database on the
//! server `scripts/services.sh` starts) with the warehouse on the S3 test server: a 50-asset project
//! with daily partitions, 3 workers, a random worker killed at a random moment at least 20 times and
//! started again. At the end every asset is materialized, every started step has ended, each Delta
//! table (read by delta-rs' Python binding) holds exactly one commit of each recorded step attempt
//! and nothing else, every materialization's lineage names the upstream materializations it read, and
//! every log line the command steps printed is in the event log. The same holds when the run store's
//! server (a private cluster) is stopped and started twice in the middle of a run.

use crate::common::*;
use crate::pg_cluster::Cluster;
use crate::postgres_source::{server as pg_server, Database};
use crate::s3_support::{bucket, server as s3_server, toml};
use crate::workers::worker_to;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const KILLS: usize = 20;

/// p0..p9 daily over three days (p5..p9 read p0..p4 partition by partition); u0..u39 whole tables:
/// u0..u9 read all of p0..p9, u10.. read the u ten before; u35..u39 are commands that print
/// [`LINES`] log lines over a second. 70 steps.
fn project(bucket: &str, state: &str, lease: &str) -> Project {
    let mut files = vec![
        (
            "spine.toml".to_string(),
            format!(
                "{}[state]\nurl = \"{state}\"\n[defaults]\nlease = \"{lease}\"\n",
                toml(bucket)
            ),
        ),
        ("assets/logs.sh".to_string(), LOGS.to_string()),
    ];
    let daily = "partitions: {daily: {start: 2026-01-01, end: 2026-01-04}}";
    for j in 0..10 {
        let query = if j < 5 {
            format!("SELECT {j} AS k, value AS v FROM generate_series(1, 50)")
        } else {
            format!(
                "SELECT k, v * 2 AS v FROM p{} WHERE partition_key = '{{{{ partition_key }}}}'",
                j - 5
            )
        };
        files.push((
            format!("assets/p{j}.yaml"),
            format!("key: p{j}\nkind: sql\n{daily}\nquery: \"{query}\"\n"),
        ));
    }
    for i in 0..40 {
        let def = if i < 10 {
            format!(
                "key: u{i}\nkind: sql\nquery: \"SELECT COUNT(*) AS n, SUM(v) AS s FROM p{i}\"\n"
            )
        } else if i < 35 {
            format!(
                "key: u{i}\nkind: sql\nquery: \"SELECT n + 1 AS n, s FROM u{}\"\n",
                i - 10
            )
        } else {
            format!(
                "key: u{i}\nkind: command\ndeps: [u{}]\ncommand: [sh, logs.sh]\nschema:\n  - n: int64\n  - s: int64\n",
                i - 10
            )
        };
        files.push((format!("assets/u{i}.yaml"), def));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Project::new(&refs)
}

/// Log lines each command step prints.
const LINES: i64 = 20;

const LOGS: &str = r#"i=0
while [ $i -lt 20 ]; do
  echo "{\"type\": \"log\", \"level\": \"info\", \"message\": \"line $i\"}"
  i=$((i+1))
  sleep 0.05
done
printf 'n,s\n1,2\n' > "$SPINE_OUTPUT_DIR/out.csv"
"#;

/// Each table's commits as (step id, sequence number), one entry per step a commit carries.
const HISTORY: &str = r#"
import json, os, sys
from deltalake import DeltaTable
endpoint, root, names = sys.argv[1], sys.argv[2], sys.argv[3:]
opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_ALLOW_HTTP": "true"}
out = {}
for name in names:
    t = DeltaTable(f"{root}/{name}", storage_options=opts)
    commits = []
    for c in t.history():
        info = c.get("spine")
        if isinstance(info, str):
            info = json.loads(info)
        if info is None:
            commits.append(None)
            continue
        for step in info.get("group", [info]):
            commits.append([step["step_id"], step["seq"]])
    out[name] = commits
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;

/// A project on a run store at `state` with the warehouse in a fresh bucket, and how to run the CLI
/// in it.
struct Soak {
    p: Project,
    endpoint: String,
    bucket: String,
}

impl Soak {
    fn new(state: &str, lease: &str, endpoint: &str) -> Soak {
        let bucket = bucket(endpoint);
        Soak {
            p: project(&bucket, state, lease),
            endpoint: endpoint.to_string(),
            bucket,
        }
    }

    fn env(&self) -> [(&'static str, String); 1] {
        [("SPINE_TEST_S3_ENDPOINT", self.endpoint.clone())]
    }

    fn run(&self, args: &[&str]) -> Run {
        run_in_env(self.p.path(), args, &self.env())
    }

    fn sql(&self, q: &str) -> serde_json::Value {
        self.run(&["sql", "--json", q]).ok().json()
    }

    fn count(&self, q: &str) -> i64 {
        self.sql(q)[0]["n"].as_i64().unwrap()
    }

    fn active(&self) -> bool {
        self.count("SELECT COUNT(*) AS n FROM spine.runs WHERE status IN ('queued', 'running')") > 0
    }

    /// A worker appending its output to `workers.log` in the project.
    fn worker(&self) -> std::process::Child {
        let log = || {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.p.path().join("workers.log"))
                .expect("workers.log");
            std::process::Stdio::from(f)
        };
        let args = ["-c", "2", "--poll", "50ms"];
        worker_to(self.p.path(), &args, &self.env(), log, log)
    }

    fn wait_until(&self, what: &str, deadline: Instant, done: impl Fn(&Soak) -> bool) {
        while !done(self) {
            assert!(Instant::now() < deadline, "{what}: not in time");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// What must hold once `runs` runs ended, whatever was killed or restarted meanwhile.
    fn verify(&self, runs: usize) {
        let statuses = self.sql("SELECT status, COUNT(*) AS n FROM spine.runs GROUP BY status");
        assert_eq!(
            statuses,
            serde_json::json!([{"status": "succeeded", "n": runs}]),
            "every run succeeded"
        );
        let open = self.count(
            "SELECT COUNT(*) AS n FROM spine.steps WHERE status NOT IN ('succeeded', 'up_to_date')",
        );
        assert_eq!(open, 0, "every started step ended, and succeeded");
        // Every asset (partition) is materialized.
        let keys = self.count("SELECT COUNT(*) AS n FROM (SELECT DISTINCT asset_key, partition_key FROM spine.materializations) k");
        assert_eq!(keys, 70);
        // Every line each command step printed is stored, in every run.
        let lines = self.sql(
            "SELECT step_id, COUNT(DISTINCT run_id || message) AS n FROM spine.events
             WHERE kind = 'log' AND message LIKE 'line %' GROUP BY step_id ORDER BY step_id",
        );
        let want: Vec<serde_json::Value> = (35..40)
            .map(|i| serde_json::json!({"step_id": format!("u{i}"), "n": LINES * runs as i64}))
            .collect();
        assert_eq!(lines, serde_json::Value::Array(want), "no log line lost");
        // The tables hold exactly the recorded attempts, each once.
        let mats = self.sql("SELECT asset_key, step_id, seq, upstream FROM spine.materializations");
        let mut recorded: BTreeMap<String, BTreeSet<(String, i64)>> = BTreeMap::new();
        for m in mats.as_array().unwrap() {
            let key = m["asset_key"].as_str().unwrap();
            let step = (
                m["step_id"].as_str().unwrap().to_string(),
                m["seq"].as_i64().unwrap(),
            );
            assert!(
                recorded
                    .entry(key.to_string())
                    .or_default()
                    .insert(step.clone()),
                "{step:?} recorded twice"
            );
            // Lineage: every non-root read names the materialization it read.
            let up: serde_json::Value = match &m["upstream"] {
                serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
                v => v.clone(),
            };
            let root = ["p0", "p1", "p2", "p3", "p4"].contains(&key);
            let reads = up.as_array().unwrap();
            assert_eq!(reads.is_empty(), root, "{key}: {up}");
            for r in reads {
                assert!(r["materialization_id"].as_i64().is_some(), "{key}: {up}");
            }
        }
        let mut args = vec![self.endpoint.clone(), format!("s3://{}/wh", self.bucket)];
        args.extend(recorded.keys().cloned());
        let history = python_json(HISTORY, &args);
        for (table, steps) in &recorded {
            let mut seen = BTreeSet::new();
            for c in history[table].as_array().unwrap() {
                let step = (
                    c[0].as_str()
                        .unwrap_or_else(|| panic!("{table}: a commit without Spine's info: {c}"))
                        .to_string(),
                    c[1].as_i64().unwrap(),
                );
                assert!(
                    seen.insert(step.clone()),
                    "{table}: {step:?} committed twice"
                );
            }
            assert_eq!(
                &seen, steps,
                "{table}: the commits are the recorded attempts"
            );
        }
    }
}

fn stop(workers: &mut [std::process::Child]) {
    for w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
}

#[test]
fn workers_killed_again_and_again_lose_and_duplicate_nothing() {
    let (Some(pg), Some(endpoint)) = (pg_server(), s3_server()) else {
        return;
    };
    let db = Database::new(&pg);
    let s = Soak::new(&db.url, "4s", &endpoint);
    s.run(&["materialize", "--queue", "--json"]).ok();
    let mut workers: Vec<_> = (0..3).map(|_| s.worker()).collect();
    let mut rng = Rng::seeded("workers_killed_again_and_again");
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut kills, mut runs) = (0, 1);
    while kills < KILLS {
        assert!(Instant::now() < deadline, "{kills} kills in 300 s");
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        let i = rng.below(3) as usize;
        workers[i].kill().unwrap(); // SIGKILL
        workers[i].wait().unwrap();
        workers[i] = s.worker();
        kills += 1;
        if !s.active() {
            s.run(&["materialize", "--queue", "--force", "--json"]).ok();
            runs += 1;
        }
    }
    s.wait_until("the runs end", deadline, |s| !s.active());
    stop(&mut workers);
    let reclaimed =
        s.count("SELECT COUNT(*) AS n FROM spine.events WHERE message LIKE '%re-claimed by%'");
    eprintln!("{kills} kills over {runs} run(s), {reclaimed} step(s) re-claimed");
    assert!(reclaimed > 0, "the kills hit running steps");
    s.verify(runs);
    drop(db);
}

#[test]
fn a_run_store_restarted_twice_mid_run_loses_nothing() {
    let (Some(_), Some(endpoint)) = (pg_server(), s3_server()) else {
        return;
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let s = Soak::new(&cluster.url, "30s", &endpoint);
    s.run(&["materialize", "--queue", "--json"]).ok();
    let mut workers: Vec<_> = (0..3).map(|_| s.worker()).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = |s: &Soak| s.count("SELECT COUNT(*) AS n FROM spine.materializations");
    // Once while partitions are written, once while the commands print their lines.
    s.wait_until("steps succeed", deadline, |s| done(s) >= 15);
    cluster.restart();
    s.wait_until("a command runs", deadline, |s| {
        s.count(
            "SELECT COUNT(*) AS n FROM spine.events WHERE kind = 'log' AND message LIKE 'line %'",
        ) > 0
    });
    cluster.restart();
    s.wait_until("the run ends", deadline, |s| !s.active());
    stop(&mut workers);
    if std::env::var("SPINE_TEST_KEEP").is_ok() {
        let _ = std::fs::copy(s.p.path().join("workers.log"), "/tmp/workers.log");
        let _ = std::fs::write("/tmp/steps.json", s.sql("SELECT step_id, status, attempt, error, reason FROM spine.steps WHERE status <> 'succeeded'").to_string());
        let _ = std::fs::write(
            "/tmp/runs.json",
            s.sql("SELECT * FROM spine.runs").to_string(),
        );
    }
    assert!(done(&s) >= 70);
    let reclaimed =
        s.count("SELECT COUNT(*) AS n FROM spine.events WHERE message LIKE '%re-claimed by%'");
    eprintln!("restarted twice; {reclaimed} step(s) re-claimed");
    s.verify(1);
}

#[test]
fn a_run_store_restarted_under_one_materialize_loses_nothing() {
    let (Some(_), Some(endpoint)) = (pg_server(), s3_server()) else {
        return;
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let s = Soak::new(&cluster.url, "30s", &endpoint);
    let log = std::fs::File::create(s.p.path().join("materialize.log")).unwrap();
    let mut child = assets_in(s.p.path(), &["materialize", "-c", "4", "--json"], &s.env())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = |s: &Soak| s.count("SELECT COUNT(*) AS n FROM spine.materializations");
    s.wait_until("steps succeed", deadline, |s| done(s) >= 15);
    cluster.restart();
    // Connections dropped under it, again and again, while it works.
    let mut drops = 0;
    while child.try_wait().unwrap().is_none() && drops < 20 {
        cluster.drop_connections();
        drops += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    s.wait_until("a command runs", deadline, |s| {
        s.count(
            "SELECT COUNT(*) AS n FROM spine.events WHERE kind = 'log' AND message LIKE 'line %'",
        ) > 0
    });
    cluster.restart();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let log = std::fs::read_to_string(s.p.path().join("materialize.log")).unwrap_or_default();
    let failed: Vec<&serde_json::Value> = v["steps"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["status"] == "failed").collect())
        .unwrap_or_default();
    assert_eq!(v["status"], "succeeded", "{failed:?}\n{log}");
    let resumed = log.matches("waiting for it to pick the step up").count();
    eprintln!("{drops} connection drops; {resumed} step(s) picked up again");
    s.verify(1);
}
