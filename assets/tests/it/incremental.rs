//! Incremental assets (`strategy: append` with a watermark) through the CLI: after each batch of new
//! source files the appended table equals a full recompute of the same query; each run records the
//! rows it inserted; a code change rebuilds; bad definitions are E0213.

use crate::common::*;

const INC: &str = "key: events_inc
kind: sql
incremental: {strategy: append, watermark: id}
query: SELECT id, amount FROM raw.events WHERE {{ watermark }} IS NULL OR id > {{ watermark }}
";

fn project() -> Project {
    Project::new(&[
        (
            "assets/events.yaml",
            "key: raw/events\nkind: source\npath: ../data/*.csv\n",
        ),
        ("assets/inc.yaml", INC),
        (
            "assets/full.yaml",
            "key: events_full\nkind: sql\nquery: SELECT id, amount FROM raw.events\n",
        ),
        ("data/0.csv", "id,amount\n1,10\n2,20\n"),
    ])
}

fn rows(p: &Project, table: &str) -> serde_json::Value {
    p.run(&[
        "sql",
        "--json",
        &format!("SELECT id, amount FROM {table} ORDER BY id"),
    ])
    .ok()
    .json()
}

fn inserted(p: &Project) -> Vec<serde_json::Value> {
    let v = p
        .run(&["sql", "--json", "SELECT metadata FROM spine.materializations WHERE asset_key = 'events_inc' ORDER BY id"])
        .ok()
        .json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::from_str::<serde_json::Value>(m["metadata"].as_str().unwrap()).unwrap()
                ["inserted"]
                .clone()
        })
        .collect()
}

#[test]
fn appending_equals_a_full_recompute_and_a_code_change_rebuilds() {
    let p = project();
    p.run(&["materialize"]).ok();
    for (i, batch) in ["id,amount\n3,30\n4,40\n5,50\n", "id,amount\n6,60\n"]
        .iter()
        .enumerate()
    {
        p.write(&format!("data/{}.csv", i + 1), batch);
        p.run(&["materialize"]).ok();
        assert_eq!(
            rows(&p, "events_inc"),
            rows(&p, "events_full"),
            "after batch {}",
            i + 1
        );
    }
    assert_eq!(rows(&p, "events_inc").as_array().unwrap().len(), 6);
    // The first run built the table; each later run appended only what was new.
    assert_eq!(inserted(&p), [serde_json::Value::Null, 3.into(), 1.into()]);
    let counts = p
        .run(&["sql", "--json", "SELECT row_count AS n FROM spine.materializations WHERE asset_key = 'events_inc' ORDER BY id"])
        .ok()
        .json();
    assert_eq!(counts, serde_json::json!([{"n": 2}, {"n": 5}, {"n": 6}]));
    // Nothing new: the asset is fresh; forced, it appends nothing.
    p.run(&["materialize", "events_inc", "--force"]).ok();
    assert_eq!(rows(&p, "events_inc").as_array().unwrap().len(), 6);
    // --full-refresh rebuilds the whole table: one version with every row, nothing appended.
    p.run(&["materialize", "events_inc", "--full-refresh"]).ok();
    assert_eq!(rows(&p, "events_inc"), rows(&p, "events_full"));
    let last = p
        .run(&["sql", "--json", "SELECT row_count AS n, metadata FROM spine.materializations WHERE asset_key = 'events_inc' ORDER BY id DESC LIMIT 1"])
        .ok()
        .json();
    assert_eq!(last, serde_json::json!([{"n": 6, "metadata": "{}"}]));
    // New code rebuilds the whole table (watermark NULL).
    p.write(
        "assets/inc.yaml",
        &INC.replace("SELECT id, amount", "SELECT id, amount * 2 AS amount"),
    );
    p.run(&["materialize"]).ok();
    let doubled = rows(&p, "events_inc");
    assert_eq!(doubled.as_array().unwrap().len(), 6);
    assert_eq!(doubled[5]["amount"], 120);
}

#[test]
fn bad_incremental_definitions_are_refused() {
    for (yaml, says) in [
        ("key: x\nkind: sql\nquery: SELECT 1 AS id WHERE {{ watermark }} IS NULL\n", "not incremental"),
        ("key: x\nkind: sql\nincremental: {strategy: merge, watermark: id}\nquery: SELECT 1 AS id\n", "`unique_key` is missing"),
        ("key: x\nkind: sql\nincremental: {strategy: merge, unique_key: [id, id]}\nquery: SELECT 1 AS id\n", "names 'id' twice"),
        ("key: x\nkind: sql\nincremental: {strategy: merge, unique_key: id, delete: \"op = \"}\nquery: SELECT 1 AS id\n", "`delete` is not a SQL predicate"),
        ("key: x\nkind: sql\nincremental: {strategy: merge, unique_key: id, watermark: id, on: x}\nquery: SELECT 1 AS id\n", "unknown field `on`"),
        ("key: x\nkind: sql\nincremental: {strategy: merge, unique_key: id}\nquery: SELECT 1 AS id WHERE {{ watermark }} IS NULL\n", "names no `watermark`"),
        ("key: x\nkind: sql\nincremental: {strategy: upsert, unique_key: id}\nquery: SELECT 1 AS id\n", "unknown strategy 'upsert'"),
        ("key: x\nkind: sql\nincremental: {strategy: append}\nquery: SELECT 1 AS id\n", "`watermark` names the column"),
        ("key: x\nkind: sql\npartitions: {static: [a]}\nincremental: {strategy: append, watermark: id}\nquery: SELECT 1 AS id\n", "partitioned asset"),
    ] {
        let q = Project::new(&[("assets/x.yaml", yaml)]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains("E0213") && r.stderr.contains(says), "{yaml}: {}", r.stderr);
    }
    // A watermark column the table does not have fails the second run, naming the columns.
    let p = Project::new(&[(
        "assets/x.yaml",
        "key: x\nkind: sql\nincremental: {strategy: append, watermark: ts}\nquery: SELECT 1 AS id\n",
    )]);
    p.run(&["materialize"]).ok();
    let r = p.run(&["materialize", "--force", "--json"]);
    r.code(1);
    let err = r.json()["steps"][0]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("watermark column 'ts' is not in the table") && err.contains("id"),
        "{err}"
    );
}

/// Both incremental examples of docs/guide/incremental.md pass `assets check` (a CI gate), with
/// their upstreams declared by schema: `{{ watermark }}` plans as NULL, as on a first run (issue 27,
/// defect 1).
#[test]
fn the_guides_incremental_examples_pass_check() {
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guide/incremental.md"),
    )
    .unwrap();
    let examples: Vec<&str> = guide
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("{{ watermark }}"))
        .collect();
    assert_eq!(examples.len(), 2, "{examples:?}");
    let p = Project::new(&[
        (
            "assets/events.yaml",
            "key: raw/events\nkind: command\ncommand: [\"true\"]\nschema:\n  - event_id: int64\n  - user_id: int64\n  - amount: float64\n",
        ),
        (
            "assets/changes.yaml",
            "key: raw/changes\nkind: command\ncommand: [\"true\"]\nschema:\n  - id: int64\n  - name: string\n  - version: int64\n  - op: string\n",
        ),
        ("assets/example_0.yaml", examples[0]),
        ("assets/example_1.yaml", examples[1]),
    ]);
    let v = p.run(&["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"], serde_json::json!([]), "{v}");
    assert_eq!(v["sql_planned"], 2, "{v}");
}
