//! A Delta table written by another tool (delta-rs' Python binding here) as a source: `check` plans
//! below it from its log alone; an observation records its Delta version, so a commit by the other
//! writer makes exactly the dependents stale and the downstream records the version it read; a folder
//! that is not a Delta table is refused with E0240.

use crate::common::*;

/// Appends `rows` (ids) to the Delta table at argv[1] with delta-rs' Python writer; prints its version.
const WRITE: &str = r#"
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
path, ids = sys.argv[1], [int(i) for i in sys.argv[2].split(",")]
write_deltalake(path, pa.table({"id": pa.array(ids, pa.int64()), "amount": pa.array([i * 1.5 for i in ids], pa.float64())}), mode="append")
sys.stdout.write(json.dumps({"version": DeltaTable(path).version()}))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;

fn write(p: &Project, ids: &str) -> i64 {
    let table = p.path().join("other/ledger").display().to_string();
    python_json(WRITE, &[table, ids.to_string()])["version"]
        .as_i64()
        .unwrap()
}

#[test]
fn a_delta_table_from_another_writer_is_a_source_read_at_its_observed_version() {
    let p = Project::new(&[
        (
            "assets/ledger.yaml",
            "key: raw/ledger\nkind: source\ndelta: ../other/ledger\n",
        ),
        (
            "assets/total.yaml",
            "key: total\nkind: sql\nquery: SELECT COUNT(*) AS n, SUM(amount) AS amount FROM raw.ledger\n",
        ),
        (
            "assets/other.yaml",
            "key: unrelated\nkind: sql\nquery: SELECT 1 AS one\n",
        ),
    ]);
    // Not a table yet: check says why it cannot plan below it.
    let v = p.run(&["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"][0]["key"], "total", "{v}");
    assert_eq!(write(&p, "1,2,3"), 0);
    let v = p.run(&["check", "--json"]).ok().json();
    assert_eq!(
        (v["sql_planned"].clone(), v["unplanned"].clone()),
        (2.into(), serde_json::json!([]))
    );
    p.run(&["materialize"]).ok();
    let total = || {
        p.run(&["sql", "--json", "SELECT n, amount FROM total"])
            .ok()
            .json()
    };
    assert_eq!(total(), serde_json::json!([{"n": 3, "amount": 9.0}]));
    // The observation records the version; the dependent's lineage names that observation.
    let seen = p
        .run(&[
            "sql",
            "--json",
            "SELECT metadata FROM spine.materializations WHERE asset_key = 'raw/ledger'",
        ])
        .ok()
        .json();
    let meta: serde_json::Value =
        serde_json::from_str(seen[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["delta"]["version"], 0);
    // Unchanged: nothing recomputes.
    let v = p.run(&["materialize", "--json"]).ok().json();
    assert!(
        step_statuses(&v).iter().all(|(_, s)| s == "up_to_date"),
        "{v}"
    );
    // The other writer commits: exactly the dependent goes stale.
    assert_eq!(write(&p, "4"), 1);
    let v = p.run(&["observe", "--json"]).ok().json();
    assert_eq!(
        step_statuses(&v),
        [("raw/ledger".to_string(), "succeeded".to_string())]
    );
    assert_eq!(
        states(p.path(), &[], &["total", "unrelated"]),
        ["stale", "fresh"]
    );
    p.run(&["materialize"]).ok();
    assert_eq!(total(), serde_json::json!([{"n": 4, "amount": 15.0}]));
    let versions = p
        .run(&["sql", "--json", "SELECT metadata FROM spine.materializations WHERE asset_key = 'raw/ledger' ORDER BY id"])
        .ok()
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    // A folder that is not a Delta table: E0240 at check, a failed observation, nothing changed.
    p.write(
        "assets/ledger.yaml",
        "key: raw/ledger\nkind: source\ndelta: ../other\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0240") && r.stderr.contains("is not a Delta table"),
        "{}",
        r.stderr
    );
    let r = p.run(&["observe", "--json"]);
    r.code(1);
    assert!(r.stdout.contains("is not a Delta table"), "{}", r.stdout);
    p.write(
        "assets/ledger.yaml",
        "key: raw/ledger\nkind: source\ndelta: ../other/ledger\nformat: csv\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(r.stderr.contains("are for files"), "{}", r.stderr);
}
