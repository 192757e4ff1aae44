//! Workers killed with SIGKILL again and again, on a Postgres run store (a fresh database on the
//! server `scripts/services.sh` starts) with the warehouse on the S3 test server: a 50-asset project
//! with daily partitions, 3 workers, a random worker killed at a random moment at least 20 times and
//! started again. At the end every asset is materialized, every started step has ended, each Delta
//! table (read by delta-rs' Python binding) holds exactly one commit of each recorded step attempt
//! and nothing else, and every materialization's lineage names the upstream materializations it read.

use crate::common::*;
use crate::postgres_source::{server as pg_server, Database};
use crate::s3_support::{bucket, server as s3_server, toml};
use crate::workers::worker;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const KILLS: usize = 20;

/// p0..p9 daily over three days (p5..p9 read p0..p4 partition by partition); u0..u39 whole tables:
/// u0..u9 read all of p0..p9, u10.. read the u ten before. 70 steps.
fn project(bucket: &str, state: &str) -> Project {
    let mut files = vec![(
        "spine.toml".to_string(),
        format!(
            "{}[state]\nurl = \"{state}\"\n[defaults]\nlease = \"4s\"\nrenew_every = \"1s\"\n",
            toml(bucket)
        ),
    )];
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
        let query = if i < 10 {
            format!("SELECT COUNT(*) AS n, SUM(v) AS s FROM p{i}")
        } else {
            format!("SELECT n + 1 AS n, s FROM u{}", i - 10)
        };
        files.push((
            format!("assets/u{i}.yaml"),
            format!("key: u{i}\nkind: sql\nquery: \"{query}\"\n"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Project::new(&refs)
}

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

#[test]
fn workers_killed_again_and_again_lose_and_duplicate_nothing() {
    let (Some(pg), Some(endpoint)) = (pg_server(), s3_server()) else {
        return;
    };
    let db = Database::new(&pg);
    let b = bucket(&endpoint);
    let p = project(&b, &db.url);
    let env = [("SPINE_TEST_S3_ENDPOINT", endpoint.clone())];
    let run = |args: &[&str]| run_in_env(p.path(), args, &env);
    let sql = |q: &str| run(&["sql", "--json", q]).ok().json();
    let active = || {
        sql("SELECT COUNT(*) AS n FROM spine.runs WHERE status IN ('queued', 'running')")[0]["n"]
            .as_i64()
            .unwrap()
            > 0
    };
    run(&["materialize", "--queue", "--json"]).ok();
    let args = ["-c", "2", "--poll", "50ms"];
    let mut workers: Vec<_> = (0..3).map(|_| worker(p.path(), &args, &env)).collect();
    let mut rng = Rng::seeded("workers_killed_again_and_again");
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut kills, mut runs) = (0, 1);
    while kills < KILLS {
        assert!(Instant::now() < deadline, "{kills} kills in 300 s");
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        let i = rng.below(3) as usize;
        workers[i].kill().unwrap(); // SIGKILL
        workers[i].wait().unwrap();
        workers[i] = worker(p.path(), &args, &env);
        kills += 1;
        if !active() {
            run(&["materialize", "--queue", "--force", "--json"]).ok();
            runs += 1;
        }
    }
    while active() {
        assert!(Instant::now() < deadline, "the runs did not end in 300 s");
        std::thread::sleep(Duration::from_millis(300));
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let reclaimed =
        sql("SELECT COUNT(*) AS n FROM spine.events WHERE message LIKE '%re-claimed by%'")[0]["n"]
            .as_i64()
            .unwrap();
    eprintln!("{kills} kills over {runs} run(s), {reclaimed} step(s) re-claimed");
    assert!(reclaimed > 0, "the kills hit running steps");
    let statuses = sql("SELECT status, COUNT(*) AS n FROM spine.runs GROUP BY status");
    assert_eq!(
        statuses,
        serde_json::json!([{"status": "succeeded", "n": runs}]),
        "every run succeeded"
    );
    let open = sql(
        "SELECT COUNT(*) AS n FROM spine.steps WHERE status NOT IN ('succeeded', 'up_to_date')",
    );
    assert_eq!(open[0]["n"], 0, "every started step ended, and succeeded");
    // Every asset (partition) is materialized.
    let keys = sql("SELECT COUNT(*) AS n FROM (SELECT DISTINCT asset_key, partition_key FROM spine.materializations) k");
    assert_eq!(keys[0]["n"], 70);
    // The tables hold exactly the recorded attempts, each once.
    let mats = sql("SELECT asset_key, step_id, seq, upstream FROM spine.materializations");
    let mut recorded: BTreeMap<String, BTreeSet<(String, i64)>> = BTreeMap::new();
    for m in mats.as_array().unwrap() {
        let asset = m["asset_key"].as_str().unwrap().to_string();
        let step = (
            m["step_id"].as_str().unwrap().to_string(),
            m["seq"].as_i64().unwrap(),
        );
        assert!(
            recorded.entry(asset).or_default().insert(step.clone()),
            "{step:?} recorded twice"
        );
        // Lineage: every non-root read names the materialization it read.
        let up: serde_json::Value = match &m["upstream"] {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        };
        let key = m["asset_key"].as_str().unwrap();
        let root = ["p0", "p1", "p2", "p3", "p4"].contains(&key);
        let reads = up.as_array().unwrap();
        assert_eq!(reads.is_empty(), root, "{key}: {up}");
        for r in reads {
            assert!(r["materialization_id"].as_i64().is_some(), "{key}: {up}");
        }
    }
    let names: Vec<String> = recorded.keys().cloned().collect();
    let mut args = vec![endpoint.clone(), format!("s3://{b}/wh")];
    args.extend(names.iter().cloned());
    let history = python_json(HISTORY, &args);
    for (table, steps) in &recorded {
        let commits = history[table].as_array().unwrap();
        let mut seen = BTreeSet::new();
        for c in commits {
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
    drop(db);
}
