//! Merge incremental assets (`strategy: merge` with a unique key, Delta MERGE) through the CLI: after
//! each batch of changes the merged table equals a full recompute (latest change per key, deletes
//! removed); each run records the keys inserted, updated and deleted; a commit rewrites only the files
//! that held a matched key; a key that is not unique in the new rows fails the step with E0214 and
//! leaves the table as it was.

use crate::common::*;

const MERGE: &str = "key: customers
kind: sql
incremental: {strategy: merge, unique_key: id, watermark: version, delete: \"op = 'D'\"}
query: |
  SELECT id, name, version, op FROM raw.changes
  WHERE {{ watermark }} IS NULL OR version > {{ watermark }}
";

/// The same table computed from every change at once.
const FULL: &str = "key: customers_full
kind: sql
query: |
  SELECT id, name, version, op FROM (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY version DESC) AS rn FROM raw.changes
  ) AS latest WHERE rn = 1 AND op <> 'D'
";

fn project() -> Project {
    Project::new(&[
        (
            "assets/changes.yaml",
            "key: raw/changes\nkind: source\npath: ../data/*.csv\n",
        ),
        ("assets/merge.yaml", MERGE),
        ("assets/full.yaml", FULL),
        (
            "data/0.csv",
            "id,name,version,op\n1,ann,1,I\n2,bob,1,I\n3,cy,1,I\n",
        ),
    ])
}

fn rows(p: &Project, table: &str) -> serde_json::Value {
    p.run(&[
        "sql",
        "--json",
        &format!("SELECT id, name, version, op FROM {table} ORDER BY id"),
    ])
    .ok()
    .json()
}

/// (inserted, updated, deleted, row count) of the latest materialization of `customers`.
fn last_counts(p: &Project) -> (i64, i64, i64, i64) {
    let v = p
        .run(&["sql", "--json", "SELECT metadata, row_count FROM spine.materializations WHERE asset_key = 'customers' ORDER BY id DESC LIMIT 1"])
        .ok()
        .json();
    let m: serde_json::Value = serde_json::from_str(v[0]["metadata"].as_str().unwrap()).unwrap();
    let n = |k: &str| m[k].as_i64().unwrap();
    (
        n("inserted"),
        n("updated"),
        n("deleted"),
        v[0]["row_count"].as_i64().unwrap(),
    )
}

/// The (adds, removes) of the table's newest Delta commit.
fn last_commit(p: &Project) -> (usize, usize) {
    let log = p.dir.path().join("warehouse/customers/_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let text = std::fs::read_to_string(commits.last().unwrap()).unwrap();
    let count = |action: &str| {
        text.lines()
            .filter(|l| l.starts_with(&format!("{{\"{action}\"")))
            .count()
    };
    (count("add"), count("remove"))
}

#[test]
fn merging_equals_a_full_recompute_and_rewrites_only_matched_files() {
    let p = project();
    p.run(&["materialize"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
    assert_eq!(last_counts(&p), (3, 0, 0, 3));
    // Only new keys: appended, no file rewritten.
    p.write("data/1.csv", "id,name,version,op\n4,dee,2,I\n5,eve,2,I\n");
    p.run(&["materialize"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
    assert_eq!(last_counts(&p), (2, 0, 0, 5));
    assert_eq!(last_commit(&p), (1, 0));
    // An update of a key in the second file and a delete of one in the first: both files are
    // rewritten; an update, an insert and a delete.
    p.write(
        "data/2.csv",
        "id,name,version,op\n4,dora,3,U\n1,ann,3,D\n6,fay,3,I\n",
    );
    p.run(&["materialize"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
    assert_eq!(last_counts(&p), (1, 1, 1, 5));
    assert_eq!(last_commit(&p).1, 2);
    // An update touching only the newest file's keys leaves the other live files alone.
    p.write("data/3.csv", "id,name,version,op\n6,faye,4,U\n");
    p.run(&["materialize"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
    assert_eq!(last_counts(&p), (0, 1, 0, 5));
    assert_eq!(last_commit(&p), (1, 1));
    let names = rows(&p, "customers");
    assert_eq!(
        names
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["bob", "cy", "dora", "eve", "faye"]
    );
    // Another Delta reader sees the merged version and its operation.
    let read = python_json(
        r#"
import json, os, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
t = dt.to_pyarrow_table().sort_by("id")
sys.stdout.write(json.dumps({"names": t.column("name").to_pylist(), "operation": dt.history(1)[0]["operation"]}))
sys.stdout.flush()
os._exit(0)  # see ../shared/DEPS.md, "Python readers in tests"
"#,
        &[p.dir
            .path()
            .join("warehouse/customers")
            .display()
            .to_string()],
    );
    assert_eq!(
        read,
        serde_json::json!({"names": ["bob", "cy", "dora", "eve", "faye"], "operation": "MERGE"})
    );
    // A rebuild reads every change at once: several per key, which the merge refuses (E0214) …
    let r = p.run(&["materialize", "customers", "--full-refresh"]);
    r.code(1);
    assert!(r.stdout.contains("E0214"), "{}", r.stdout);
    assert_eq!(last_counts(&p), (0, 1, 0, 5));
    // … until the query keeps the latest change per key (a code change rebuilds too).
    p.write(
        "assets/merge.yaml",
        &MERGE.replace(
            "SELECT id, name, version, op FROM raw.changes\n  WHERE {{ watermark }} IS NULL OR version > {{ watermark }}",
            "SELECT id, name, version, op FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY version DESC) AS rn\n  FROM raw.changes WHERE {{ watermark }} IS NULL OR version > {{ watermark }}) AS latest WHERE rn = 1",
        ),
    );
    p.run(&["materialize", "customers"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
    assert_eq!(last_counts(&p), (5, 0, 0, 5));
    p.run(&["materialize", "customers", "--full-refresh"]).ok();
    assert_eq!(rows(&p, "customers"), rows(&p, "customers_full"));
}

/// The error of the run's `customers` step.
fn step_error(report: &serde_json::Value) -> String {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "customers")
        .and_then(|s| s["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_key_that_is_not_unique_in_the_new_rows_fails_and_changes_nothing() {
    let p = project();
    p.run(&["materialize"]).ok();
    let before = rows(&p, "customers");
    let versions = |p: &Project| {
        p.run(&["sql", "--json", "SELECT max(delta_version) AS v FROM spine.materializations WHERE asset_key = 'customers'"])
            .ok()
            .json()
    };
    let v0 = versions(&p);
    p.write(
        "data/1.csv",
        "id,name,version,op\n2,bo,2,U\n2,bobby,2,U\n7,gus,2,I\n",
    );
    let r = p.run(&["materialize", "customers", "--json"]);
    r.code(1);
    let err = step_error(&r.json());
    assert!(
        err.contains("E0214") && err.contains("not unique") && err.contains("(2) × 2"),
        "{err}"
    );
    assert_eq!(rows(&p, "customers"), before);
    assert_eq!(versions(&p), v0);
    // A NULL key is refused the same way.
    p.write("data/1.csv", "id,name,version,op\n8,hal,2,I\n,nobody,2,I\n");
    let r = p.run(&["materialize", "customers", "--json"]);
    r.code(1);
    let err = step_error(&r.json());
    assert!(err.contains("E0214") && err.contains("NULL"), "{err}");
    // A key column the query does not return, too.
    p.write(
        "assets/merge.yaml",
        &MERGE.replace("unique_key: id", "unique_key: customer_id"),
    );
    let r = p.run(&["materialize", "customers", "--json"]);
    r.code(1);
    let err = step_error(&r.json());
    assert!(
        err.contains("E0214") && err.contains("'customer_id'"),
        "{err}"
    );
    assert_eq!(rows(&p, "customers"), before);
}
