//! Bad input and faults (issue: "Hardening"): one test per defect fixed so far.

use crate::common::*;

/// `assets sql` plans only queries: INSERT, COPY, CREATE and SET are bad usage, and neither the table
/// nor the file system changes.
#[test]
fn ad_hoc_sql_is_read_only() {
    let p = diamond();
    p.run(&["materialize", "raw/a"]).ok();
    // A read first: the last connection to close folds SQLite's WAL into the database file, which
    // changes its bytes (not its content); seen once in CI when the materialize left its WAL behind.
    // (An empty WAL left or removed is not counted: see `snapshot`.)
    p.run(&["sql", "SELECT 1 AS one"]).ok();
    let before = p.snapshot();
    let target = p.path().join("warehouse/raw/a/stolen.parquet");
    for stmt in [
        r#"INSERT INTO "raw/a" SELECT * FROM "raw/a""#.to_string(),
        format!("COPY (SELECT * FROM raw.a) TO '{}'", target.display()),
        "CREATE TABLE t AS SELECT 1 AS v".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/tmp'".to_string(),
    ] {
        let r = p.run(&["sql", &stmt]);
        r.code(2);
        assert!(
            r.stderr.contains("E0306") && r.stderr.contains("read-only"),
            "{stmt}: {}",
            r.stderr
        );
    }
    assert!(!target.exists());
    assert_eq!(before, p.snapshot(), "nothing stored changed");
    let n = p
        .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM raw.a"])
        .json();
    assert_eq!(n[0]["n"], 100);
}

/// A check message that does not match the protocol fails the step (naming the line) and commits
/// nothing; only `"severity": "warn"` lets a failed check through.
#[test]
fn malformed_check_messages_fail_the_step() {
    let write = "open(os.environ['SPINE_OUTPUT_DIR']+'/x.jsonl','w').write('{\\\"v\\\": 1}\\\\n')";
    for (n, msg) in [
        r#"{'type':'check','name':'c','passed':False,'severity':'ERROR'}"#,
        r#"{'type':'check','name':'c','passed':False,'severity':'fatal'}"#,
        r#"{'type':'check','name':'c','passed':0}"#,
        r#"{'type':'check','passed':True}"#,
    ]
    .iter()
    .enumerate()
    {
        let p = Project::new(&[(
            "assets/a.yaml",
            &format!(
                "key: checked\nkind: command\ncommand: [python3, -c, \"import os, json; {write}; print('hello'); print(json.dumps({msg}))\"]\n"
            ),
        )]);
        let r = p.run(&["materialize", "--json"]);
        r.code(1);
        let err = r.json()["steps"][0]["error"].as_str().unwrap().to_string();
        assert!(
            err.contains("protocol error on stdout line 2"),
            "case {n}: {err}"
        );
        assert!(!p.path().join("warehouse/checked/_delta_log").exists());
    }
    let p = Project::new(&[(
        "assets/a.yaml",
        &format!(
            "key: checked\nkind: command\ncommand: [python3, -c, \"import os, json; {write}; print(json.dumps({{'type':'check','name':'c','passed':False,'severity':'warn'}})); print(json.dumps({{'type':'request','path':'/x'}}))\"]\n"
        ),
    )]);
    p.run(&["materialize"]).ok();
}

/// Key components that collide with the Delta layout are rejected before anything runs.
#[test]
fn reserved_key_components_are_rejected() {
    for key in ["q/_delta_log", "_private/x", "a/_tmp"] {
        let p = Project::new(&[(
            "assets/a.yaml",
            &format!("key: {key}\nkind: sql\nquery: SELECT 1 AS v\n"),
        )]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains("E0201"), "{key}: {}", r.stderr);
        p.run(&["materialize"]).code(2);
        assert!(!p.path().join("warehouse").exists());
    }
}

/// Files saved with a byte-order mark load like any other.
#[test]
fn byte_order_marks_are_accepted() {
    let p = Project::new(&[
        (
            "spine.toml",
            "\u{feff}[project]\nname = \"t\"\n[defaults]\nretry_delay = \"50ms\"\n",
        ),
        ("assets/a.yaml", "\u{feff}key: a\nkind: sql\nsql: a.sql\n"),
        ("assets/a.sql", "\u{feff}SELECT 1 AS v\n"),
        (
            "assets/b.yaml",
            "\u{feff}assets:\n  - key: b\n    kind: sql\n    query: SELECT v FROM a\n",
        ),
    ]);
    p.run(&["check"]).ok();
    p.run(&["materialize"]).ok();
}

/// Bytes that are not UTF-8 on stdout or stderr are logged (lossily), and the step succeeds: the stderr
/// reader keeps reading, so the program never writes into a closed pipe.
#[test]
fn non_utf8_output_is_logged_not_fatal() {
    let script = r#"
import os, sys, time
with open(os.environ["SPINE_OUTPUT_DIR"] + "/x.jsonl", "w") as f:
    f.write('{"v": 1}\n')
sys.stdout.buffer.write(b"out \xff\xfe\n")
sys.stdout.flush()
for i in range(200):
    sys.stderr.buffer.write(b"err \xc3 %d\n" % i)
    sys.stderr.flush()
    time.sleep(0.001)
"#;
    let p = Project::new(&[
        (
            "assets/a.yaml",
            "key: bytes\nkind: command\ncommand: [python3, bytes.py]\n",
        ),
        ("assets/bytes.py", script),
    ]);
    p.run(&["materialize"]).ok();
    let run = p.run(&["runs", "--json"]).json()[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let logs = p.run(&["logs", &run]);
    assert!(
        logs.stdout.contains("out \u{fffd}\u{fffd}"),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("err \u{fffd} 199"), "{}", logs.stdout);
}

const ONE_COMMIT_READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for key in sys.argv[2:]:
    dt = DeltaTable(sys.argv[1] + "/" + key)
    out[key] = {"version": dt.version(), "commits": len(dt.history())}
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;

/// Two `materialize` processes on one project at once, ten times: no conflict errors reach the user,
/// an independent Delta reader finds exactly one commit per table, and nothing is stale afterwards.
#[test]
fn overlapping_runs_commit_each_step_once() {
    let keys = ["raw/a", "stg/b", "marts/c", "marts/d"];
    for trial in 0..10 {
        let p = diamond();
        let spawn = || {
            bin()
                .args(["materialize", "--json"])
                .current_dir(p.path())
                .env_remove("SPINE_STATE_URL")
                .env_remove("SPINE_WAREHOUSE_URL")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = (spawn(), spawn());
        for out in [first.wait_with_output(), second.wait_with_output()] {
            let out = out.unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut args = vec![p.path().join("warehouse").display().to_string()];
        args.extend(keys.iter().map(|k| k.to_string()));
        let read = python_json(ONE_COMMIT_READER, &args);
        for k in keys {
            assert_eq!(read[k]["version"], 0, "trial {trial}: {k} {read}");
            assert_eq!(read[k]["commits"], 1, "trial {trial}: {k} {read}");
        }
        let status = p.run(&["status", "--json"]).json();
        for s in status.as_array().unwrap() {
            assert_eq!(s["state"], "fresh", "trial {trial}: {s}");
        }
    }
}

/// A schema change of an existing asset is refused by default (the column and both types named, the
/// table untouched); `evolve` accepts added columns and widenings; `overwrite` accepts anything.
#[test]
fn schema_changes_follow_on_schema_change() {
    let p = Project::new(&[(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT CAST(1 AS INT) AS id, 2.5 AS amount\n",
    )]);
    p.run(&["materialize"]).ok();
    let version = |p: &Project| {
        p.run(&[
            "sql",
            "--json",
            "SELECT MAX(delta_version) AS v FROM spine.materializations",
        ])
        .json()[0]["v"]
            .clone()
    };
    // A changed type: refused, nothing committed.
    p.write(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT CAST(1 AS INT) AS id, 'x' AS amount\n",
    );
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let err = r.json()["steps"][0]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("column 'amount' changed type from Float64 to Utf8")
            && err.contains("on_schema_change"),
        "{err}"
    );
    assert_eq!(version(&p), 0);
    let read = p.run(&["sql", "--json", "SELECT amount FROM t"]).json();
    assert_eq!(read[0]["amount"], 2.5, "the table still holds the old data");
    // A dropped column: refused too, even under evolve.
    p.write(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT CAST(1 AS INT) AS id\non_schema_change: evolve\n",
    );
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    assert!(
        r.stdout.contains("column 'amount' (Float64) was dropped"),
        "{}",
        r.stdout
    );
    // Widening and an added column: fine under evolve.
    p.write(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT CAST(1 AS BIGINT) AS id, 2.5 AS amount, 'new' AS extra\non_schema_change: evolve\n",
    );
    p.run(&["materialize"]).ok();
    assert_eq!(version(&p), 1);
    // Anything under overwrite.
    p.write(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT 'only' AS label\non_schema_change: overwrite\n",
    );
    p.run(&["materialize"]).ok();
    assert_eq!(version(&p), 2);
    // A bad policy is a definition error.
    p.write(
        "assets/a.yaml",
        "key: t\nkind: sql\nquery: SELECT 1 AS v\non_schema_change: sometimes\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0107") && r.stderr.contains("sometimes"),
        "{}",
        r.stderr
    );
}

/// `[limits] memory` bounds execution: a large sort spills and succeeds, an aggregation that cannot
/// spill fails the step (permanently, once) with a clear message, an ad-hoc query whose result is too big
/// fails instead of eating the machine's memory, and a bad size is a definition error.
#[test]
fn memory_limit_spills_or_fails_clearly() {
    let p = Project::new(&[
        (
            "spine.toml",
            "[project]\nname = \"t\"\n[limits]\nmemory = \"48MiB\"\n",
        ),
        (
            "assets/sort.yaml",
            "key: sorted\nkind: sql\nquery: SELECT value, value % 7 AS m FROM generate_series(1, 3000000) ORDER BY m, value DESC\n",
        ),
        (
            "assets/agg.yaml",
            "key: hoard\nkind: sql\nquery: SELECT array_length(array_agg(value)) AS n FROM generate_series(1, 20000000)\nretries: 2\n",
        ),
    ]);
    // One pool per run, shared by its steps: each runs alone here.
    let r = p.run(&["materialize", "--json", "sorted"]);
    r.ok();
    assert_eq!(
        status_of(&r.json(), "sorted"),
        "succeeded",
        "the sort spilled"
    );
    let r = p.run(&["materialize", "--json", "hoard"]);
    r.code(1);
    let v = r.json();
    let hoard = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "hoard")
        .unwrap();
    assert_eq!(hoard["status"], "failed");
    assert_eq!(hoard["attempts"], 1, "not retried: {hoard}");
    assert_eq!(hoard["failure_class"], "permanent");
    assert!(
        hoard["error"]
            .as_str()
            .unwrap()
            .contains("memory limit reached"),
        "{hoard}"
    );
    let rows = p
        .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM sorted"])
        .json();
    assert_eq!(rows[0]["n"], 3_000_000);

    let r = p.run(&[
        "sql",
        "SELECT a.value FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    ]);
    r.code(1);
    assert!(
        r.stderr.contains("memory limit reached (48 MiB"),
        "{}",
        r.stderr
    );

    let r = run_in_env(
        p.path(),
        &["status"],
        &[("SPINE_MEMORY_LIMIT", "lots".into())],
    );
    r.code(2);
    assert!(
        r.stderr.contains("E0104") && r.stderr.contains("SPINE_MEMORY_LIMIT"),
        "{}",
        r.stderr
    );
}

/// `doctor` finds a truncated commit file and a deleted data file (naming the file and version), and
/// `--repair` moves the unreadable table aside and re-materializes, after which everything reads again.
#[test]
fn doctor_finds_and_repairs_corruption() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    p.run(&["doctor"]).ok();
    // Truncate raw/a's only commit; delete stg/b's data file.
    let log = p
        .path()
        .join("warehouse/raw/a/_delta_log/00000000000000000000.json");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, &text[..text.len() / 2]).unwrap();
    let data: Vec<_> = std::fs::read_dir(p.path().join("warehouse/stg/b"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|x| x == "parquet"))
        .collect();
    std::fs::remove_file(&data[0]).unwrap();
    let r = p.run(&["doctor"]);
    r.code(1);
    let line = |k: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("{k}: {}", r.stdout))
            .to_string()
    };
    assert!(
        line("raw/a").contains("broken")
            && line("raw/a").contains("00000000000000000000.json (version 0)"),
        "{}",
        r.stdout
    );
    assert!(
        line("stg/b").contains("broken")
            && line("stg/b").contains(&data[0].file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        r.stdout
    );
    assert!(line("marts/c").contains("ok"), "{}", r.stdout);
    // Reading the broken table names it, instead of a backtrace.
    let q = p.run(&["sql", "SELECT COUNT(*) FROM raw.a"]);
    assert_ne!(q.code, 0);
    assert!(
        q.stderr.contains("raw/a") && q.stderr.lines().count() < 5,
        "{}",
        q.stderr
    );

    let fixed = p.run(&["doctor", "--repair"]);
    fixed.ok();
    assert!(
        p.path()
            .join(".spine/quarantine")
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
    p.run(&["doctor"]).ok();
    let n = p
        .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM stg.b"])
        .json();
    assert_eq!(n[0]["n"], 100);
    // Downstream of the repaired assets is now stale and recomputes.
    let again = p.run(&["materialize", "--json"]).json();
    assert_eq!(status_of(&again, "marts/c"), "succeeded");
}

/// A reader of stdout that goes away (`assets … | head`) ends the command quietly with status 141,
/// as SIGPIPE would, without a panic message; SIGPIPE itself stays ignored, so a network peer that
/// resets a connection cannot kill a run (tests/s3_faults.rs).
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let p = diamond();
    let bin = env!("CARGO_BIN_EXE_assets");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{bin}' sql --json 'SELECT value FROM generate_series(1, 300000)' 2>err.txt | head -c 5; \
             echo; cat err.txt"
        ))
        .current_dir(p.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with('['), "{text}");
    assert!(
        !text.contains("panicked") && !text.contains("Broken pipe"),
        "{text}"
    );
}

/// A failed step keeps its failure class (issue 28, item 4): `spine.steps.failure_class` and the
/// `step_failed` event say `permanent` for a cast error (no retry) and `retryable` for a program
/// that exited non-zero (retried).
#[test]
fn a_failed_steps_class_is_stored_with_it_and_its_event() {
    let p = Project::new(&[
        (
            "assets/cast.yaml",
            "key: cast\nkind: sql\nretries: 2\nretry_delay: 10ms\nquery: SELECT CAST('x' AS INT) AS n\n",
        ),
        (
            "assets/exit.yaml",
            "key: exit\nkind: command\nretries: 1\nretry_delay: 10ms\ncommand: [sh, -c, \"exit 3\"]\n",
        ),
    ]);
    p.run(&["materialize"]).code(1);
    let steps = p
        .run(&[
            "sql",
            "--json",
            "SELECT step_id AS s, attempt AS a, failure_class AS c FROM spine.steps ORDER BY step_id",
        ])
        .ok()
        .json();
    assert_eq!(
        steps,
        serde_json::json!([
            {"s": "cast", "a": 1, "c": "permanent"},
            {"s": "exit", "a": 2, "c": "retryable"}
        ])
    );
    let events = p
        .run(&[
            "sql",
            "--json",
            "SELECT step_id AS s, data FROM spine.events WHERE kind = 'step_failed' ORDER BY step_id",
        ])
        .ok()
        .json();
    let class = |i: usize| -> String {
        let data: serde_json::Value =
            serde_json::from_str(events[i]["data"].as_str().unwrap()).unwrap();
        data["class"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(
        (class(0), class(1)),
        ("permanent".into(), "retryable".into()),
        "{events}"
    );
}
