//! Schemas known without running anything: `assets check` on a brand-new project plans the SQL below
//! sources (CSV headers, Parquet footers) and below command assets and sources that declare `schema:`;
//! a declared schema is a contract (a SQL asset must plan to it, a command's output must match it, and
//! a CSV source is read with its types); drifted files and bad declarations are refused with codes.

use crate::common::*;

const PEOPLE: &str = "key: people\nkind: command\ncommand: [python3, -c, \"import os; open(os.environ['SPINE_OUTPUT_DIR']+'/p.jsonl','w').write('{\\\"id\\\": 1, \\\"name\\\": \\\"ann\\\"}\\\\n')\"]\n";

fn project() -> Project {
    Project::new(&[
        (
            "assets/rates.yaml",
            "key: raw/rates\nkind: source\npath: ../data/rates/*.csv\n",
        ),
        (
            "assets/people.yaml",
            &format!("{PEOPLE}schema:\n  - id: int64\n  - name: string\n"),
        ),
        (
            "assets/later.yaml",
            "key: raw/later\nkind: source\npath: ../data/later/*.parquet\nschema: [{k: string}, {n: int64}]\n",
        ),
        (
            "assets/nothing.yaml",
            "key: raw/nothing\nkind: source\npath: ../data/none/*.csv\n",
        ),
        (
            "assets/a.yaml",
            "key: a\nkind: sql\nquery: SELECT r.currency, p.name FROM raw.rates r CROSS JOIN people p\n",
        ),
        (
            "assets/b.yaml",
            "key: b\nkind: sql\nquery: SELECT k, SUM(n) AS n FROM raw.later GROUP BY k\n",
        ),
        (
            "assets/c.yaml",
            "key: c\nkind: sql\nquery: SELECT * FROM raw.nothing\n",
        ),
        ("data/rates/2026-01.csv", "currency,rate\nEUR,1.1\nGBP,1.3\n"),
    ])
}

#[test]
fn check_plans_below_sources_and_declared_command_assets_on_a_new_project() {
    let p = project();
    let v = p.run(&["check", "--json"]).ok().json();
    assert_eq!(v["sql_planned"], 2, "{v}");
    let unplanned = v["unplanned"].as_array().unwrap();
    assert_eq!(unplanned.len(), 1, "{v}");
    assert_eq!(unplanned[0]["key"], "c");
    let why = unplanned[0]["why"].as_str().unwrap();
    assert!(
        why.contains("no file matches") && why.contains("schema:"),
        "{why}"
    );
    // Nothing ran: no state, no warehouse.
    assert!(!p.path().join("warehouse").exists());
    // A column the CSV header lacks, or the declaration lacks, does not plan.
    p.write(
        "assets/a.yaml",
        "key: a\nkind: sql\nquery: SELECT r.currency, r.ratio FROM raw.rates r\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0302") && r.stderr.contains("ratio"),
        "{}",
        r.stderr
    );
    p.write(
        "assets/a.yaml",
        "key: a\nkind: sql\nquery: SELECT p.email FROM people p\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0302") && r.stderr.contains("email"),
        "{}",
        r.stderr
    );
    // A SQL asset's own declaration is a contract its query must plan to.
    p.write(
        "assets/a.yaml",
        "key: a\nkind: sql\nquery: SELECT p.name FROM people p\nschema: [{name: int64}]\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0251") && r.stderr.contains("column 'name' is Utf8, declared Int64"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_declared_schema_is_enforced_on_output_and_used_to_read_csv() {
    let p = Project::new(&[
        (
            "assets/people.yaml",
            &format!("{PEOPLE}schema: [{{id: int64}}, {{label: string}}]\n"),
        ),
        (
            "assets/codes.yaml",
            "key: raw/codes\nkind: source\npath: ../data/codes/*.csv\nschema: [{zip: string}, {n: int64}]\n",
        ),
        ("data/codes/a.csv", "zip,n\n00123,1\n04000,2\n"),
    ]);
    // The command's output lacks a declared column: refused, nothing committed.
    let r = p.run(&["materialize", "--json", "people"]);
    r.code(1);
    assert!(
        r.stdout.contains("E0251") && r.stdout.contains("column 'label' is declared but missing"),
        "{}",
        r.stdout
    );
    let r = p.run(&["sql", "SELECT * FROM people"]);
    assert!(r.stderr.contains("E0305"), "{}", r.stderr);
    p.write(
        "assets/people.yaml",
        &format!("{PEOPLE}schema: [{{id: int64}}, {{name: string}}]\n"),
    );
    p.run(&["materialize", "people"]).ok();
    let rows = p
        .run(&["sql", "--json", "SELECT id, name FROM people"])
        .ok()
        .json();
    assert_eq!(rows, serde_json::json!([{"id": 1, "name": "ann"}]));
    // The CSV is read with the declared types: leading zeros survive (inferred, they would be 123).
    p.run(&["observe"]).ok();
    let rows = p
        .run(&["sql", "--json", "SELECT zip, n FROM raw.codes ORDER BY n"])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([{"zip": "00123", "n": 1}, {"zip": "04000", "n": 2}])
    );
    // A file whose header is not the declaration is named with the column; the last observation stays.
    p.write("data/codes/b.csv", "zipcode,n\n1,3\n");
    let r = p.run(&["observe", "--json"]);
    r.code(1);
    assert!(
        r.stdout.contains("b.csv") && r.stdout.contains("column 1 is 'zipcode', declared 'zip'"),
        "{}",
        r.stdout
    );
    // `check` plans with the declaration and does not read the files.
    p.run(&["check"]).ok();
    let n = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM spine.materializations WHERE asset_key = 'raw/codes'",
        ])
        .ok()
        .json();
    assert_eq!(n[0]["n"], 1);
}

#[test]
fn a_drifted_parquet_file_fails_check_naming_file_and_column() {
    let p = Project::new(&[
        (
            "assets/events.yaml",
            "key: raw/events\nkind: source\npath: ../data/events/*.parquet\n",
        ),
        (
            "assets/n.yaml",
            "key: n\nkind: sql\nquery: SELECT COUNT(*) AS n FROM raw.events\n",
        ),
    ]);
    python_json(
        r#"
import json, os, sys
import pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), os.path.join(d, "a.parquet"))
pq.write_table(pa.table({"id": pa.array(["x"], pa.string())}), os.path.join(d, "b.parquet"))
sys.stdout.write(json.dumps({"files": 2}))
sys.stdout.flush()
os._exit(0)
"#,
        &[p.path().join("data/events").display().to_string()],
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0240")
            && r.stderr.contains("b.parquet")
            && r.stderr.contains("column 'id'"),
        "{}",
        r.stderr
    );
    // Declared, the Parquet footers must agree with it.
    p.write(
        "assets/events.yaml",
        "key: raw/events\nkind: source\npath: ../data/events/a.parquet\nschema: [{id: int32}]\n",
    );
    let r = p.run(&["observe", "--json"]);
    r.code(1);
    assert!(
        r.stdout.contains("column 'id' is Int64, declared Int32"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_schema_declarations_are_refused() {
    for (schema, says) in [
        ("{id: int64}", "not a list"),
        ("[{id: int65}]", "unknown type 'int65'"),
        ("[{id: int64}, {id: string}]", "declared twice"),
        ("[{name: x, typ: int64}]", "unknown field 'typ'"),
        ("[{p: \"decimal(40,2)\"}]", "decimal(P,S)"),
    ] {
        let p = Project::new(&[(
            "assets/a.yaml",
            &format!("key: a\nkind: sql\nquery: SELECT 1 AS id\nschema: {schema}\n"),
        )]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0250") && r.stderr.contains(says),
            "{schema}: {}",
            r.stderr
        );
    }
}

/// examples/shop on a fresh checkout (no state, no warehouse): `check` plans every SQL query, through
/// the CSV source, the declared command asset and the partitioned marts, and writes nothing.
#[test]
fn the_shop_example_checks_completely_before_anything_ran() {
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("shop");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(&shop)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    let _ = std::fs::remove_dir_all(copy.join(".spine"));
    let _ = std::fs::remove_dir_all(copy.join("warehouse"));
    let v = run_in(&copy, &["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"], serde_json::json!([]), "{v}");
    assert_eq!(v["sql_planned"], 12, "{v}");
    assert!(!copy.join("warehouse").exists() && !copy.join(".spine").exists());
}
