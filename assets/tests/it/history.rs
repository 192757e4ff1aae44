//! `assets history KEY`: the table's Delta commits newest first, with the run, rows and publication
//! Spine recorded, and commits by another writer marked as such.

use crate::common::*;

const APPEND: &str = r#"
import json, os, sys
import pyarrow as pa
from deltalake import write_deltalake
write_deltalake(sys.argv[1], pa.table({"id": pa.array([99], pa.int64())}), mode="append")
sys.stdout.write(json.dumps({"ok": True}))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;

#[test]
fn history_lists_commits_with_runs_rows_and_publication() {
    let p = Project::new(&[(
        "assets/t.yaml",
        "key: t\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, 3)\nchecks:\n  - row_count: {max: 4}\n",
    )]);
    let first = p.run(&["materialize", "--json"]).ok().json();
    p.write(
        "assets/t.yaml",
        "key: t\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, 5)\nchecks:\n  - row_count: {max: 4}\n",
    );
    p.run(&["materialize"]).code(1);
    python_json(
        APPEND,
        &[p.path().join("warehouse/t").display().to_string()],
    );
    let h = p.run(&["history", "t", "--json"]).ok().json();
    let got: Vec<(i64, Option<bool>, Option<i64>, usize)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["version"].as_i64().unwrap(),
                c["steps"][0]["published"].as_bool(),
                c["steps"][0]["rows"].as_i64(),
                c["steps"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, None, None, 0),
            (1, Some(false), Some(5), 1),
            (0, Some(true), Some(3), 1)
        ],
        "{h}"
    );
    assert_eq!(h[2]["steps"][0]["run_id"], first["run_id"]);
    assert!(h[0]["timestamp_ms"].as_i64().unwrap() >= h[2]["timestamp_ms"].as_i64().unwrap());
    let text = p.run(&["history", "t", "--limit", "2"]).ok().stdout.clone();
    assert!(
        text.contains("(another writer)") && text.contains("no (held back)"),
        "{text}"
    );
    assert_eq!(
        text.lines().count(),
        3,
        "--limit 2: a header and two commits:\n{text}"
    );
    // Time travel: version 0 has the first run's rows, the latest the appended one too.
    let count = |at: &[&str]| {
        let mut args = vec!["sql", "--json"];
        for a in at {
            args.extend(["--at", a]);
        }
        args.push("SELECT COUNT(*) AS n FROM t");
        p.run(&args).ok().json()[0]["n"].clone()
    };
    // Without --at, `assets sql` reads what the asset serves: its last published version (0; the
    // held-back version 1 and the outside writer's append are read with --at).
    assert_eq!(
        (
            count(&["t=0"]),
            count(&["t=1"]),
            count(&["t=2"]),
            count(&[])
        ),
        (3.into(), 5.into(), 6.into(), 3.into())
    );
    for (at, says) in [
        ("t=7", "has no Delta version 7 (its versions are 0 to 2)"),
        ("t", "is not KEY=VERSION"),
        ("other=1", "which the query does not read"),
    ] {
        let r = p.run(&["sql", "--at", at, "SELECT COUNT(*) FROM t"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0307") && r.stderr.contains(says),
            "{at}: {}",
            r.stderr
        );
    }
    // An asset without a table, and an unknown key.
    let q = Project::new(&[(
        "assets/a.yaml",
        "key: a\nkind: sql\nquery: SELECT 1 AS one\n",
    )]);
    assert!(q
        .run(&["history", "a"])
        .ok()
        .stdout
        .contains("a has no table yet"));
    let r = q.run(&["history", "nope"]);
    r.code(2);
    assert!(r.stderr.contains("E0402"), "{}", r.stderr);
}
