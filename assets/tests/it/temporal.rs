//! `kind: temporal` against the real Temporal dev server (`scripts/services.sh temporal`) and a small
//! Python worker (`temporal_support/worker.py`): the asset starts its workflow with its upstream's
//! rows, parks while it runs (no slot held), and records the workflow's result once a daemon pass
//! sees it completed. Running again — also after Spine was killed — attaches to the same workflow;
//! new upstream data starts a new one. Needs the cargo feature `temporal` (.ci/run builds it).

use crate::common::*;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The dev server's address and the `temporal` CLI beside the SDK's Python.
pub(crate) fn server() -> Option<(String, PathBuf, PathBuf)> {
    let address = std::env::var("SPINE_TEST_TEMPORAL_ADDRESS").ok()?;
    let python = PathBuf::from(std::env::var("SPINE_TEST_TEMPORAL_PYTHON").ok()?);
    let cli = python.with_file_name("temporal");
    Some((address, python, cli))
}

/// The worker, stopped on drop.
struct Worker(Child);

impl Worker {
    fn start(python: &PathBuf, address: &str, queue: &str) -> Worker {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/temporal_support/worker.py");
        let mut child = Command::new(python)
            .arg(script)
            .args([address, queue])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the worker did not start");
        Worker(child)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `temporal …` against the dev server, as JSON.
pub(crate) fn cli(cli: &PathBuf, address: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(cli)
        .args(args)
        .args(["--address", address, "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "temporal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// The workflows started on `queue`'s type so far (ids).
fn workflows(c: &PathBuf, address: &str, queue: &str) -> Vec<String> {
    let v = cli(
        c,
        address,
        &[
            "workflow",
            "list",
            "--query",
            &format!("TaskQueue = '{queue}'"),
        ],
    );
    let mut ids: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["execution"]["workflowId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.dedup();
    ids
}

/// Waits until `what` holds (the dev server's visibility lags its writes a little).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const ORDERS: &str = "key: raw/orders
kind: sql
query: SELECT * FROM (VALUES ('c1', 10), ('c2', 5), ('c1', 7)) AS t(customer, amount)
";

fn sums(queue: &str) -> String {
    format!(
        "key: ml/sums
kind: temporal
workflow: SumAmounts
task_queue: {queue}
input: SELECT customer, amount FROM raw.orders ORDER BY customer, amount
address: ${{env:TEST_TEMPORAL_ADDRESS}}
"
    )
}

const REPORT: &str = "key: ml/report
kind: sql
query: SELECT customer, total * 2 AS doubled FROM ml.sums
";

#[test]
fn a_workflow_is_started_awaited_attached_to_and_recorded() {
    let Some((address, python, c)) = server() else {
        // Under CI the server must be there (.ci/run starts it); by hand the test is skipped.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no Temporal server: .ci/run starts one with scripts/services.sh"
        );
        eprintln!("skipped: no Temporal server (eval \"$(scripts/services.sh temporal)\")");
        return;
    };
    let queue = format!("spine-test-{}", std::process::id());
    let _worker = Worker::start(&python, &address, &queue);
    let p = Project::new(&[
        ("assets/orders.yaml", ORDERS),
        ("assets/sums.yaml", &sums(&queue)),
        ("assets/report.yaml", REPORT),
    ]);
    let envs = [("TEST_TEMPORAL_ADDRESS", address.clone())];
    run_in_env(p.path(), &["check"], &envs).ok();

    // The step starts the workflow and parks; the run waits.
    let v = run_in_env(p.path(), &["materialize", "--json"], &envs).json();
    assert_eq!(v["status"], "waiting", "{v}");
    assert_eq!(status_of(&v, "ml/sums"), "waiting", "{v}");
    eventually("one workflow", || {
        workflows(&c, &address, &queue).len() == 1
    });
    let id = workflows(&c, &address, &queue)[0].clone();
    assert!(id.starts_with("spine:ml/sums:"), "{id}");
    // `assets temporal query` reaches the workflow the parked step waits on.
    let received = run_in_env(
        p.path(),
        &["temporal", "query", "ml/sums", "received", "--json"],
        &envs,
    )
    .ok()
    .json();
    assert_eq!(
        received["answer"], 3,
        "the workflow got the 3 orders: {received}"
    );
    assert_eq!(received["workflow_id"], id.as_str(), "{received}");

    // A daemon pass while it runs leaves it parked.
    run_in_env(p.path(), &["daemon", "--once"], &envs).ok();
    let runs = run_in_env(p.path(), &["runs", "--json"], &envs).ok().json();
    assert_eq!(runs[0]["status"], "waiting", "{runs}");

    // Running again attaches to the same workflow — also after a kill -9 of Spine.
    let v = run_in_env(p.path(), &["materialize", "--json"], &envs).json();
    assert_eq!(status_of(&v, "ml/sums"), "waiting", "{v}");
    let mut child = assets_in(p.path(), &["materialize"], &envs)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    run_in_env(p.path(), &["materialize", "--json"], &envs);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        workflows(&c, &address, &queue),
        vec![id.clone()],
        "never started twice"
    );

    // The workflow completes; the next daemon pass records its result and runs what reads it.
    run_in_env(
        p.path(),
        &["temporal", "signal", "ml/sums", "finish"],
        &envs,
    )
    .ok();
    eventually("the workflow completed", || {
        cli(
            &c,
            &address,
            &["workflow", "describe", "--workflow-id", &id],
        )
        .to_string()
        .contains("COMPLETED")
    });
    run_in_env(p.path(), &["daemon", "--once"], &envs).ok();
    let rows = run_in_env(
        p.path(),
        &[
            "sql",
            "--json",
            "SELECT customer, doubled FROM ml.report ORDER BY customer",
        ],
        &envs,
    )
    .ok()
    .json();
    assert_eq!(
        rows,
        serde_json::json!([{"customer": "c1", "doubled": 34}, {"customer": "c2", "doubled": 10}])
    );
    let m = run_in_env(p.path(), &["sql", "--json", "SELECT metadata FROM spine.materializations WHERE asset_key = 'ml/sums' ORDER BY id LIMIT 1"], &envs)
        .ok()
        .json();
    let meta: serde_json::Value = serde_json::from_str(m[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["workflow_id"], id.as_str(), "{meta}");
    let run_id = meta["workflow_run_id"].as_str().unwrap().to_string();
    assert!(!run_id.is_empty(), "{meta}");
    // The ids are in the Delta commit too, for other readers.
    let log = std::fs::read_dir(p.path().join("warehouse/ml/sums/_delta_log"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        log.contains(&run_id),
        "the commit info names the workflow run"
    );

    // Fresh now: nothing is started again.
    let v = run_in_env(p.path(), &["materialize", "--json"], &envs)
        .ok()
        .json();
    assert_eq!(status_of(&v, "ml/sums"), "up_to_date", "{v}");
    // New upstream data is new work: a new workflow.
    p.write(
        "assets/orders.yaml",
        &ORDERS.replace("('c2', 5)", "('c2', 6)"),
    );
    let v = run_in_env(p.path(), &["materialize", "--json"], &envs).json();
    assert_eq!(status_of(&v, "ml/sums"), "waiting", "{v}");
    eventually("a second workflow", || {
        workflows(&c, &address, &queue).len() == 2
    });
}
