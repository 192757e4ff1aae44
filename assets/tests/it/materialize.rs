//! End-to-end: materialize, re-run (all fresh), change one SQL file (only it and its descendants re-run).

use crate::common::*;

#[test]
fn materialize_rerun_and_change_one_file() {
    let p = diamond();
    let first = p.run(&["materialize", "--json"]);
    first.ok();
    let v = first.json();
    assert_eq!(v["status"], "succeeded");
    for k in ["raw/a", "stg/b", "marts/c", "marts/d"] {
        assert_eq!(status_of(&v, k), "succeeded", "{k}");
    }
    let a = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "raw/a")
        .unwrap();
    assert_eq!(a["rows"], 100);

    // Everything is fresh now.
    let again = p.run(&["materialize", "--json"]);
    again.ok();
    let v = again.json();
    for k in ["raw/a", "stg/b", "marts/c", "marts/d"] {
        assert_eq!(status_of(&v, k), "up_to_date", "{k}");
    }
    let human = p.run(&["materialize"]);
    human.ok();
    assert!(
        human.stdout.contains("0 materialized, 4 up to date"),
        "{}",
        human.stdout
    );

    // Change one SQL file: status names it stale with the reason, and only it and its descendants re-run.
    p.write("assets/b.sql", "SELECT id, x + 2 AS x FROM raw.a\n");
    let st = p.run(&["status", "--json"]);
    st.ok();
    let sv = st.json();
    let b = sv
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "stg/b")
        .unwrap();
    assert_eq!(b["freshness"]["state"], "stale");
    assert!(b["freshness"]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("code version changed"));
    let c = sv
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "marts/c")
        .unwrap();
    assert_eq!(c["upstream_outdated"], true);

    let third = p.run(&["materialize", "--json"]);
    third.ok();
    let v = third.json();
    assert_eq!(status_of(&v, "raw/a"), "up_to_date");
    assert_eq!(status_of(&v, "marts/d"), "up_to_date");
    assert_eq!(status_of(&v, "stg/b"), "succeeded");
    assert_eq!(status_of(&v, "marts/c"), "succeeded");

    // The new total reflects the change: sum(2*id + 2) for id in 1..=100.
    let q = p.run(&["sql", "--json", "SELECT total FROM marts.c"]);
    q.ok();
    assert_eq!(q.json()[0]["total"], 10100 + 200);

    // --force recomputes fresh assets; a selection limits the run.
    let forced = p.run(&["materialize", "--json", "--force", "marts/d"]);
    forced.ok();
    assert_eq!(
        step_statuses(&forced.json()),
        vec![("marts/d".to_string(), "succeeded".to_string())]
    );
}

#[test]
fn upstream_materialized_elsewhere_makes_downstream_stale() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    // Re-materialize raw/a alone (forced): its downstreams are now stale because a newer version exists.
    p.run(&["materialize", "--force", "raw/a"]).ok();
    let st = p.run(&["status", "--json", "raw/a+"]);
    st.ok();
    let v = st.json();
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "marts/d")
        .unwrap();
    assert_eq!(d["freshness"]["state"], "stale");
    assert!(
        d["freshness"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("newer materialization"),
        "{d}"
    );
    let run = p.run(&["materialize", "--json"]);
    let v = run.json();
    assert_eq!(status_of(&v, "raw/a"), "up_to_date");
    assert_eq!(status_of(&v, "stg/b"), "succeeded");
    assert_eq!(status_of(&v, "marts/d"), "succeeded");
}

#[test]
fn records_lineage_and_exact_upstream_versions() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    p.run(&["materialize", "--force", "raw/a"]).ok();
    p.run(&["materialize", "stg/b"]).ok();
    // stg/b's latest materialization read raw/a at Delta version 1 (its second commit).
    let q = p.run(&[
        "sql",
        "--json",
        "SELECT l.upstream_key, l.upstream_delta_version FROM spine.lineage l JOIN spine.materializations m \
         ON l.materialization_id = m.id WHERE m.asset_key = 'stg/b' ORDER BY m.id DESC LIMIT 1",
    ]);
    q.ok();
    let v = q.json();
    assert_eq!(v[0]["upstream_key"], "raw/a");
    assert_eq!(v[0]["upstream_delta_version"], 1);
    // The Delta versions the store recorded match the tables.
    let m = p.run(&["sql", "--json", "SELECT asset_key, delta_version, row_count FROM spine.materializations WHERE asset_key = 'raw/a' ORDER BY id"]);
    let v = m.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["delta_version"], 1);
    assert!(p
        .path()
        .join("warehouse/raw/a/_delta_log/00000000000000000001.json")
        .exists());
}

#[test]
fn list_runs_run_logs_and_lineage() {
    let p = diamond();
    p.run(&["materialize"]).ok();
    let list = p.run(&["list", "--json", "+marts/c"]);
    list.ok();
    let keys: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["raw/a", "stg/b", "marts/c"]);

    let runs = p.run(&["runs", "--json"]);
    runs.ok();
    let id = runs.json()[0]["run_id"].as_str().unwrap().to_string();
    let run = p.run(&["run", &id[..10]]);
    run.ok();
    assert!(
        run.stdout.contains("succeeded") && run.stdout.contains("marts/c"),
        "{}",
        run.stdout
    );
    let logs = p.run(&["logs", &id]);
    logs.ok();
    assert!(
        logs.stdout.contains("materialized raw/a: 100 rows"),
        "{}",
        logs.stdout
    );

    let tree = p.run(&["lineage", "stg/b"]);
    tree.ok();
    assert!(
        tree.stdout.contains("└── raw/a") && tree.stdout.contains("└── marts/c"),
        "{}",
        tree.stdout
    );
    let dot = p.run(&["lineage", "raw/a", "--downstream", "--format", "dot"]);
    assert!(
        dot.stdout.contains("\"raw/a\" -> \"stg/b\"") && !dot.stdout.contains("upstream"),
        "{}",
        dot.stdout
    );
    let json = p.run(&[
        "lineage",
        "marts/c",
        "--upstream",
        "--depth",
        "1",
        "--format",
        "json",
    ]);
    let v = json.json();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
}

#[test]
fn json_logs_carry_run_and_step_ids() {
    let p = diamond();
    let r = p.run(&["materialize", "--log-format", "json", "-v"]);
    r.ok();
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("step succeeded"))
        .unwrap_or_else(|| panic!("no step log line in:\n{}", r.stderr));
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert!(v["span"]["run_id"].is_string(), "{v}");
    assert!(v["span"]["step_id"].is_string(), "{v}");
}

#[test]
fn init_creates_a_project_that_materializes() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init", "demo"]).ok();
    let root = dir.path().join("demo");
    let toml = std::fs::read_to_string(root.join("spine.toml")).unwrap();
    assert!(
        toml.contains("name = \"demo\""),
        "named after its folder:\n{toml}"
    );
    // Every query plans before anything ran: the command asset declares its columns.
    let check = run_in(&root, &["check", "--json"]).ok().json();
    assert_eq!(check["unplanned"], serde_json::json!([]), "{check}");
    let r = run_in(&root, &["materialize", "--json"]);
    r.ok();
    let v = r.json();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["steps"].as_array().unwrap().len(), 4);
    assert_eq!(
        run_in(&root, &["init"]).code,
        2,
        "init refuses an existing project"
    );
    // From a subfolder, the project is found as git finds its repository.
    let st = run_in(&root.join("assets"), &["status", "--json"])
        .ok()
        .json();
    assert_eq!(st.as_array().unwrap().len(), 4, "{st}");
}

#[test]
fn bench_command_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &["bench", "--n", "5", "--plan-n", "50", "--runs", "1"],
    );
    r.ok();
    for row in [
        "chain of 5 SQL assets",
        "fan-out 1 → 5 → 1",
        "warehouse fsync off",
        "plan 50 assets",
        "PER ASSET",
    ] {
        assert!(r.stdout.contains(row), "missing {row:?} in:\n{}", r.stdout);
    }
}

/// `bench --store` measures the run store alone: a row per store and client count, every step
/// claimed, started and finished (a step another client held would fail it).
#[test]
fn bench_store_prints_a_row_per_store_client_count_and_step_end() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &[
            "bench",
            "--store",
            "sqlite",
            "--clients",
            "1,3",
            "--steps",
            "60",
        ],
    );
    r.ok();
    let rows: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("sqlite"))
        .collect();
    // A row per client count and way a step ends: with nothing to record, and with a record.
    let shapes: Vec<(Option<&str>, Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.nth(1), f.next(), f.next())
        })
        .collect();
    assert_eq!(
        shapes,
        vec![
            (Some("1"), Some("end"), Some("60")),
            (Some("1"), Some("record"), Some("60")),
            (Some("3"), Some("end"), Some("60")),
            (Some("3"), Some("record"), Some("60")),
        ],
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("CLAIM+START P99"), "{}", r.stdout);
}

#[test]
fn environment_overrides_state_and_warehouse_and_fills_env_references() {
    let p = diamond();
    let elsewhere = tempfile::tempdir().unwrap();
    // ${env:NAME} in spine.toml reads the environment (as for secrets).
    p.write(
        "spine.toml",
        "[project]\nname = \"t\"\n[warehouse]\nurl = \"${env:SPINE_TEST_WH}\"\n",
    );
    let from_toml = (
        "SPINE_TEST_WH",
        elsewhere.path().join("from-toml").display().to_string(),
    );
    let state = (
        "SPINE_STATE_URL",
        format!("sqlite://{}/state.db", elsewhere.path().display()),
    );
    run_in_env(
        p.path(),
        &["materialize", "--json"],
        &[from_toml.clone(), state.clone()],
    )
    .ok();
    assert!(elsewhere.path().join("state.db").exists());
    assert!(elsewhere.path().join("from-toml/raw/a/_delta_log").exists());
    assert!(!p.path().join(".spine/state.db").exists() && !p.path().join("warehouse").exists());

    // The environment variable beats spine.toml.
    let from_env = (
        "SPINE_WAREHOUSE_URL",
        elsewhere.path().join("from-env").display().to_string(),
    );
    run_in_env(
        p.path(),
        &["materialize", "--force", "raw/a"],
        &[from_toml, from_env, state],
    )
    .ok();
    assert!(elsewhere.path().join("from-env/raw/a/_delta_log").exists());

    // An unset variable is a clear error with the line.
    let r = p.run(&["materialize"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0103")
            && r.stderr.contains("SPINE_TEST_WH")
            && r.stderr.contains("spine.toml:4"),
        "{}",
        r.stderr
    );
}

/// `--fail-fast` stops the run at the first failure: an independent slow step is cancelled before
/// its commit; without it, that step runs to the end (issue 27).
#[test]
fn fail_fast_stops_at_the_first_failure() {
    let p = Project::new(&[
        (
            "assets/bad.yaml",
            "key: bad\nkind: sql\nquery: SELECT CAST('x' AS INT) AS v\n",
        ),
        (
            "assets/slow.yaml",
            "key: slow\nkind: command\ncommand: [sh, -c, 'sleep 2; printf \"n\\n1\\n\" > \"$SPINE_OUTPUT_DIR/o.csv\"']\n",
        ),
    ]);
    let r = p.run(&["materialize", "-c", "2", "--fail-fast", "--json"]);
    r.code(1);
    let v = r.json();
    assert_eq!(status_of(&v, "bad"), "failed", "{v}");
    assert_eq!(status_of(&v, "slow"), "cancelled", "{v}");
    assert!(!p.path().join("warehouse/slow/_delta_log").exists());
    let r = p.run(&["materialize", "-c", "2", "--json"]);
    r.code(1);
    assert_eq!(status_of(&r.json(), "slow"), "succeeded");
}

/// dbt's habits (issue 27): `--target NAME` picks `[targets.NAME]` from spine.toml (its own state,
/// warehouse and vars over the file's), `--vars '{…}'` overrides `${var:…}` for one command; an
/// unknown target is E0111 naming the ones there are, and vars that are not a mapping E0112.
#[test]
fn targets_and_vars_on_the_command_line() {
    let p = Project::new(&[
        (
            "spine.toml",
            "[project]\nname = \"t\"\n[vars]\norders = \"3\"\n\
             [targets.ci]\nstate = {url = \"sqlite://.spine/ci.db\"}\nwarehouse = {url = \"wh_ci\"}\n\
             vars = {orders = \"5\"}\n",
        ),
        (
            "assets/orders.yaml",
            "key: orders\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, ${var:orders})\n",
        ),
    ]);
    let count = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["sql", "--json", "SELECT COUNT(*) AS n FROM orders"]);
        p.run(&all).ok().json()[0]["n"].clone()
    };
    p.run(&["materialize"]).ok();
    assert_eq!(count(&[]), 3);
    p.run(&["--target", "ci", "materialize"]).ok();
    assert_eq!(count(&["--target", "ci"]), 5);
    assert!(p.path().join("wh_ci/orders/_delta_log").is_dir());
    assert!(p.path().join(".spine/ci.db").is_file());
    assert_eq!(count(&[]), 3, "the default target is untouched");
    // --vars wins over the target's vars; the changed SQL makes it stale, no --force needed.
    p.run(&["--target", "ci", "--vars", "{orders: 7}", "materialize"])
        .ok();
    assert_eq!(count(&["--target", "ci"]), 7);
    let r = p.run(&["--vars", "{\"orders\": 2}", "materialize", "--json"]);
    r.ok();
    assert_eq!(count(&[]), 2);
    let r = p.run(&["--target", "prod", "status"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0111") && r.stderr.contains("its targets: ci"),
        "{}",
        r.stderr
    );
    for bad in ["[1, 2]", "{orders: [1]}", "{'a-b': 1}", "{: 1"] {
        let r = p.run(&["--vars", bad, "status"]);
        r.code(2);
        assert!(r.stderr.contains("E0112"), "{bad}: {}", r.stderr);
    }
}

/// Selectors by state (issue 27 habits): `status:stale|missing|failed|…` from the run store, and
/// dbt's slim CI: `state:modified` (and `state:new`) against another checkout's
/// `assets list --json`, with graph operators; nothing selected is "nothing to do" (exit 0); bad
/// uses are E0401 / E0423.
#[test]
fn status_and_state_selectors() {
    let p = Project::new(&[
        ("assets/a.yaml", "key: a\nkind: sql\nquery: SELECT 1 AS x\n"),
        (
            "assets/b.yaml",
            "key: b\nkind: sql\nquery: SELECT x + 1 AS x FROM a\n",
        ),
        (
            "assets/c.yaml",
            "key: c\nkind: sql\nquery: SELECT x * 2 AS x FROM b\n",
        ),
    ]);
    let keys = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--json"];
        all.extend(args);
        p.run(&all)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect()
    };
    let manifest = p.run(&["list", "--json"]).ok().stdout.clone();
    p.write("manifest.json", &manifest);
    assert_eq!(keys(&["-s", "status:missing"]), ["a", "b", "c"]);
    p.run(&["materialize"]).ok();
    assert!(keys(&["-s", "status:missing"]).is_empty());
    assert_eq!(keys(&["-s", "status:fresh"]), ["a", "b", "c"]);
    let r = p.run(&["materialize", "-s", "status:stale"]);
    r.ok();
    assert!(r.stdout.contains("nothing to do"), "{}", r.stdout);

    // b changes: b is stale, c fresh against what it read but upstream_stale.
    p.write(
        "assets/b.yaml",
        "key: b\nkind: sql\nquery: SELECT x + 10 AS x FROM a\n",
    );
    assert_eq!(keys(&["-s", "status:stale"]), ["b"]);
    assert_eq!(keys(&["-s", "status:stale+"]), ["b", "c"]);
    assert_eq!(keys(&["-s", "status:upstream_stale"]), ["c"]);
    assert_eq!(
        keys(&["-s", "state:modified", "--state", "manifest.json"]),
        ["b"]
    );
    // Slim CI: build what the change touches, and nothing else.
    let v = p
        .run(&[
            "materialize",
            "-s",
            "state:modified+",
            "--state",
            "manifest.json",
            "--json",
        ])
        .ok()
        .json();
    let ran: Vec<String> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["b", "c"], "{v}");

    // A new asset is state:new (and state:modified); a failing one is status:failed.
    p.write(
        "assets/d.yaml",
        "key: d\nkind: sql\nquery: SELECT CAST('x' AS INT) AS x FROM c\n",
    );
    assert_eq!(
        keys(&["-s", "state:new", "--state", "manifest.json"]),
        ["d"]
    );
    assert_eq!(
        keys(&["-s", "state:modified", "--state", "manifest.json"]),
        ["b", "d"]
    );
    p.run(&["materialize", "d"]).code(1);
    assert_eq!(keys(&["-s", "status:failed"]), ["d"]);
    let status = p
        .run(&["status", "-s", "status:failed", "--json"])
        .ok()
        .json();
    assert_eq!(status.as_array().unwrap().len(), 1, "{status}");

    // Bad uses.
    let r = p.run(&["list", "-s", "state:modified"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0423") && r.stderr.contains("--state"),
        "{}",
        r.stderr
    );
    let r = p.run(&["list", "-s", "state:modified", "--state", "nope.json"]);
    r.code(2);
    assert!(r.stderr.contains("E0423"), "{}", r.stderr);
    let r = p.run(&["list", "-s", "status:bogus"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0401") && r.stderr.contains("missing"),
        "{}",
        r.stderr
    );
}

/// `assets show KEY` (issue 27 habits): one asset's definition, state and why, schema with column
/// lineage, checks with their latest outcome, its materializations and the versions it read.
#[test]
fn show_puts_one_asset_on_one_screen() {
    let p = Project::new(&[
        (
            "assets/a.yaml",
            "key: raw/a\nkind: sql\ndescription: numbers\nowners: [bo]\nquery: SELECT value AS x FROM generate_series(1, 3)\nchecks:\n  - not_null: [x]\n",
        ),
        ("assets/b.yaml", "key: b\nkind: sql\nquery: SELECT SUM(x) AS total FROM raw.a\n"),
    ]);
    let before = p.run(&["show", "b", "--json"]).ok().json();
    assert_eq!(before["state"], "missing", "{before}");
    p.run(&["materialize"]).ok();
    let a = p.run(&["show", "raw/a", "--json"]).ok().json();
    assert_eq!(a["description"], "numbers");
    assert_eq!(a["owners"], serde_json::json!(["bo"]));
    assert_eq!(a["downstream"], serde_json::json!(["b"]));
    assert_eq!(a["defined_at"], "assets/a.yaml:1");
    assert_eq!(a["checks"][0]["passed"], true, "{a}");
    assert_eq!(a["materializations"][0]["rows"], 3);
    let b = p.run(&["show", "b", "--json"]).ok().json();
    assert_eq!(b["state"], "fresh");
    assert_eq!(
        b["schema"],
        serde_json::json!([{"name": "total", "type": "Int64", "from": ["raw/a.x (aggregated)"]}])
    );
    assert_eq!(b["read"][0]["key"], "raw/a");
    assert_eq!(b["read"][0]["delta_version"], 0);
    // Stale, and why.
    p.write(
        "assets/a.yaml",
        "key: raw/a\nkind: sql\nquery: SELECT value AS x FROM generate_series(1, 4)\n",
    );
    p.run(&["materialize", "raw/a"]).ok();
    let b = p.run(&["show", "b", "--json"]).ok().json();
    assert_eq!(b["state"], "stale");
    assert!(b["why"][0].as_str().unwrap().contains("raw/a"), "{b}");
    let text = p.run(&["show", "b"]).ok().stdout.clone();
    for part in [
        "state         stale",
        "schema",
        "raw/a.x (aggregated)",
        "read by the latest",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let r = p.run(&["show", "nope"]);
    r.code(2);
    assert!(r.stderr.contains("E0402"), "{}", r.stderr);
}
