//! Source assets through the CLI: a glob of 100 Parquet files (written by pyarrow) and CSV files read
//! in place, never copied; `observe` records a new data version only when a file changed, so exactly
//! the dependents of a changed source become stale; a file that drifted in schema or changed after
//! its observation is named; `snapshot: true` copies the observation into a Delta version.

use crate::common::*;

const WRITE_PARQUET: &str = r#"
import json, os, sys
import pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
for i in range(100):
    t = pa.table({"id": pa.array([i * 10 + j for j in range(10)], pa.int64()),
                  "part": pa.array([i] * 10, pa.int64())})
    pq.write_table(t, os.path.join(d, f"events-{i:03}.parquet"))
sys.stdout.write(json.dumps({"files": 100}))
sys.stdout.flush()
os._exit(0)
"#;

fn project() -> Project {
    let p = Project::new(&[
        (
            "assets/events.yaml",
            "key: raw/events\nkind: source\npath: ../data/events/events-*.parquet\n",
        ),
        (
            "assets/rates.yaml",
            "key: raw/rates\nkind: source\npath: ../data/rates/*.csv\ncsv: {header: true, delimiter: \";\"}\n",
        ),
        (
            "assets/event_count.yaml",
            "key: event_count\nkind: sql\nquery: SELECT COUNT(*) AS n, COUNT(DISTINCT part) AS parts, SUM(id) AS ids FROM raw.events\n",
        ),
        (
            "assets/avg_rate.yaml",
            "key: avg_rate\nkind: sql\nquery: SELECT currency, AVG(rate) AS rate FROM raw.rates GROUP BY currency\n",
        ),
        ("data/rates/2026-01.csv", "currency;rate\nEUR;1.1\nGBP;1.3\n"),
    ]);
    python_json(
        WRITE_PARQUET,
        &[p.path().join("data/events").display().to_string()],
    );
    p
}

fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn sources_are_read_in_place_and_a_change_makes_exactly_their_dependents_stale() {
    let p = project();
    let v = p.run(&["materialize", "--json"]).ok().json();
    assert!(statuses(&v).iter().all(|(_, s)| s == "succeeded"), "{v}");
    assert_eq!(
        p.run(&["sql", "--json", "SELECT n, parts, ids FROM event_count"])
            .ok()
            .json(),
        serde_json::json!([{"n": 1000, "parts": 100, "ids": 499500}])
    );
    // Nothing was copied: no Delta table for the sources.
    assert!(!p.path().join("warehouse/raw/events").exists());
    assert!(!p.path().join("warehouse/raw/rates").exists());
    let obs = p
        .run(&["sql", "--json", "SELECT asset_key AS k, row_count AS n, delta_version AS v FROM spine.materializations WHERE asset_key LIKE 'raw/%' ORDER BY k"])
        .ok()
        .json();
    assert_eq!(
        obs,
        serde_json::json!([{"k": "raw/events", "n": 1000, "v": -1}, {"k": "raw/rates", "n": 2, "v": -1}])
    );

    // Observing unchanged sources records nothing; everything stays fresh.
    let again = p.run(&["observe", "--json"]).ok().json();
    assert_eq!(
        statuses(&again),
        [
            ("raw/events".to_string(), "up_to_date".to_string()),
            ("raw/rates".to_string(), "up_to_date".to_string())
        ]
    );

    // A new rates file: only raw/rates gets a new observation, only avg_rate goes stale.
    p.write("data/rates/2026-02.csv", "currency;rate\nEUR;1.3\n");
    let v = p.run(&["observe", "--json"]).ok().json();
    assert_eq!(
        statuses(&v),
        [
            ("raw/events".to_string(), "up_to_date".to_string()),
            ("raw/rates".to_string(), "succeeded".to_string())
        ]
    );
    assert_eq!(
        states(p.path(), &[], &["avg_rate", "event_count"]),
        ["stale", "fresh"]
    );
    let v = p.run(&["materialize", "--json"]).ok().json();
    assert!(
        statuses(&v).contains(&("avg_rate".to_string(), "succeeded".to_string())),
        "{v}"
    );
    assert!(
        statuses(&v).contains(&("event_count".to_string(), "up_to_date".to_string())),
        "{v}"
    );
    let eur = p
        .run(&[
            "sql",
            "--json",
            "SELECT rate FROM avg_rate WHERE currency = 'EUR'",
        ])
        .ok()
        .json();
    assert!(
        (eur[0]["rate"].as_f64().unwrap() - 1.2).abs() < 1e-9,
        "{eur}"
    );
}

#[test]
fn drifted_and_changed_source_files_are_named() {
    let p = project();
    p.run(&["materialize"]).ok();
    // A file whose columns differ: the observation fails naming the file and the column.
    p.write("data/rates/2026-03.csv", "currency;price\nEUR;1.0\n");
    let r = p.run(&["observe", "--json"]);
    r.code(1);
    let v = r.json();
    let err = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "raw/rates")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("2026-03.csv") && err.contains("column 'rate' is missing"),
        "{err}"
    );
    std::fs::remove_file(p.path().join("data/rates/2026-03.csv")).unwrap();
    // A file changed after its observation: materializing a dependent observes the source again
    // first (it is not selected), so the step reads — and records — the file as it is now.
    p.write(
        "data/rates/2026-01.csv",
        "currency;rate\nEUR;9.9\nGBP;1.3\n",
    );
    let v = p.run(&["materialize", "avg_rate", "--json"]).ok().json();
    assert_eq!(
        statuses(&v),
        [
            ("avg_rate".to_string(), "succeeded".to_string()),
            ("raw/rates".to_string(), "succeeded".to_string())
        ]
    );
    let eur = p
        .run(&[
            "sql",
            "--json",
            "SELECT rate FROM avg_rate WHERE currency = 'EUR'",
        ])
        .ok()
        .json();
    assert_eq!(eur, serde_json::json!([{"rate": 9.9}]));
    // Bad definitions.
    for (yaml, says) in [
        (
            "key: s\nkind: source\npath: data/*/x.csv\n",
            "wildcards go in the file name only",
        ),
        (
            "key: s\nkind: source\npath: data/x.txt\n",
            "cannot tell the format",
        ),
        (
            "key: s\nkind: source\npath: data/x.parquet\ncsv: {header: false}\n",
            "`csv:` options are for `format: csv`",
        ),
        (
            "key: s\nkind: source\npath: data/x.csv\nformat: xml\n",
            "unknown variant",
        ),
    ] {
        let q = Project::new(&[("assets/s.yaml", yaml)]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains(says), "{yaml}: {}", r.stderr);
    }
}

#[test]
fn a_snapshot_source_is_copied_into_delta_versions() {
    let p = Project::new(&[
        (
            "assets/rates.yaml",
            "key: raw/rates\nkind: source\npath: ../data/*.json\nsnapshot: true\n",
        ),
        (
            "data/a.json",
            "{\"currency\": \"EUR\", \"rate\": 1.1}\n{\"currency\": \"GBP\", \"rate\": 1.3}\n",
        ),
    ]);
    p.run(&["materialize"]).ok();
    assert!(p.path().join("warehouse/raw/rates/_delta_log").exists());
    // The copy is what later runs read, even after the file changed.
    p.write("data/a.json", "{\"currency\": \"EUR\", \"rate\": 5.0}\n");
    let n = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n, MAX(rate) AS top FROM raw.rates",
        ])
        .ok()
        .json();
    assert_eq!(n, serde_json::json!([{"n": 2, "top": 1.3}]));
}

/// A command asset gets a source's rows through `input_format` (a source read in place has no Delta
/// files); without it, the step says what to set.
#[test]
fn a_command_asset_reads_a_source_through_input_format() {
    let script = "import os\nrows = open(os.environ['SPINE_INPUT_RAW__RATES']).read().splitlines()\nopen(os.environ['SPINE_OUTPUT_DIR'] + '/n.csv', 'w').write('lines\\n%d\\n' % len(rows))\n";
    let p = Project::new(&[
        ("assets/rates.yaml", "key: raw/rates\nkind: source\npath: ../data/*.csv\n"),
        (
            "assets/count.yaml",
            "key: counted\nkind: command\ndeps: [raw/rates]\ninput_format: csv\ncommand: [python3, count.py]\n",
        ),
        ("assets/count.py", script),
        ("data/a.csv", "currency,rate\nEUR,1.1\nGBP,1.3\n"),
    ]);
    p.run(&["materialize"]).ok();
    let n = p
        .run(&["sql", "--json", "SELECT lines FROM counted"])
        .ok()
        .json();
    assert_eq!(
        n,
        serde_json::json!([{"lines": 3}]),
        "a header and two rows"
    );
    p.write(
        "assets/count.yaml",
        "key: counted\nkind: command\ndeps: [raw/rates]\ncommand: [python3, count.py]\n",
    );
    let r = p.run(&["materialize", "counted", "--force", "--json"]);
    r.code(1);
    let err = r.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "counted")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("source read in place") && err.contains("input_format"),
        "{err}"
    );
}

/// A source's `path:` (and a SQL asset's `sql:` file) take `${env:NAME}` and `${var:NAME}`, so a
/// project points its sources at a data folder per environment; an unset variable is E0103 (issue
/// 27, defect 10).
#[test]
fn path_like_fields_take_env_and_vars() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("customer.csv"), "id,name\n1,ann\n2,bob\n").unwrap();
    let p = Project::new(&[
        (
            "spine.toml",
            "[project]\nname = \"t\"\n[vars]\nfile = \"customer\"\n",
        ),
        (
            "assets/c.yaml",
            "key: raw/customer\nkind: source\npath: \"${env:SPINE_TEST_DATA}/${var:file}.csv\"\n",
        ),
        (
            "assets/n.yaml",
            "key: n\nkind: sql\nsql: \"${var:file}.sql\"\n",
        ),
        (
            "assets/customer.sql",
            "SELECT COUNT(*) AS n FROM raw.customer\n",
        ),
    ]);
    let env = [("SPINE_TEST_DATA", data.path().display().to_string())];
    run_in_env(p.path(), &["materialize"], &env).ok();
    let n = run_in_env(p.path(), &["sql", "--json", "SELECT n FROM n"], &env)
        .ok()
        .json();
    assert_eq!(n[0]["n"], 2);
    let unset = p.run(&["check"]);
    unset.code(2);
    assert!(
        unset.stderr.contains("E0103") && unset.stderr.contains("SPINE_TEST_DATA"),
        "{}",
        unset.stderr
    );
}

/// A source whose observed file was deleted is not shown fresh (issue 27, defect 9).
#[test]
fn a_source_whose_files_vanished_is_not_fresh() {
    let p = Project::new(&[
        (
            "assets/s.yaml",
            "key: raw/rates\nkind: source\npath: ../data/*.csv\n",
        ),
        ("data/a.csv", "currency,rate\neur,1.0\n"),
        ("data/b.csv", "currency,rate\nusd,2.0\n"),
    ]);
    p.run(&["materialize"]).ok();
    let state = |p: &Project| p.run(&["status", "--json"]).ok().json()[0].clone();
    assert_eq!(state(&p)["state"], "fresh");
    p.remove("data/b.csv");
    let s = state(&p);
    assert_eq!(s["state"], "stale", "{s}");
    assert!(
        s.to_string().contains("is gone since it was observed"),
        "{s}"
    );
    p.run(&["observe"]).ok();
    assert_eq!(state(&p)["state"], "fresh");
}
