//! Column-level lineage through the CLI: each SQL materialization records its columns' lineage
//! (`spine.column_lineage`), `assets lineage KEY --column C` walks it up and down across assets (tree,
//! JSON, dot), a crash between commit and record keeps it (it travels in the Delta commit), and bad
//! input is E0420 with exit 2.

use crate::common::*;

/// The edges of `assets lineage --column --json` output, as `from -> to how`.
fn edges(v: &serde_json::Value) -> Vec<String> {
    v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} -> {} {}",
                e["from"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
                e["how"].as_str().unwrap()
            )
        })
        .collect()
}

fn project() -> Project {
    Project::new(&[
        (
            "assets/orders.yaml",
            "key: raw/orders\nkind: sql\nquery: SELECT value AS id, value % 3 AS customer, value * 1.5 AS amount, CASE WHEN value % 2 = 0 THEN 'ok' ELSE 'void' END AS status FROM generate_series(1, 30)\n",
        ),
        (
            "assets/stg.yaml",
            "key: stg/orders\nkind: sql\nquery: SELECT id, customer, round(amount, 1) AS amount FROM raw.orders WHERE status = 'ok'\n",
        ),
        (
            "assets/marts.yaml",
            "assets:\n  - key: marts/by_customer\n    kind: sql\n    query: SELECT customer, SUM(amount) AS revenue, COUNT(*) AS n FROM stg.orders GROUP BY customer\n  - key: marts/top\n    kind: sql\n    query: SELECT customer, revenue * 2 AS double_revenue FROM marts.by_customer\n",
        ),
    ])
}

#[test]
fn lineage_is_recorded_and_walked_across_assets() {
    let p = project();
    p.run(&["materialize"]).ok();
    let rows = p
        .run(&["sql", "--json", "SELECT column_name, upstream_key, upstream_column, how FROM spine.column_lineage WHERE asset_key = 'marts/by_customer' ORDER BY position, upstream_key, upstream_column"])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"column_name": "customer", "upstream_key": "stg/orders", "upstream_column": "customer", "how": "identity"},
            {"column_name": "revenue", "upstream_key": "stg/orders", "upstream_column": "amount", "how": "aggregated"},
            {"column_name": "revenue", "upstream_key": "stg/orders", "upstream_column": "customer", "how": "filter"},
            {"column_name": "n", "upstream_key": "stg/orders", "upstream_column": "customer", "how": "filter"},
        ])
    );
    // Upstream of marts/top.double_revenue: through by_customer and stg to raw, with the filter on
    // status in stg/orders as a leaf.
    let v = p
        .run(&[
            "lineage",
            "marts/top",
            "--column",
            "double_revenue",
            "--upstream",
            "--json",
        ])
        .ok()
        .json();
    let edges = edges(&v);
    assert_eq!(
        edges,
        [
            "marts/by_customer.revenue -> marts/top.double_revenue transformed",
            "stg/orders.amount -> marts/by_customer.revenue aggregated",
            "raw/orders.amount -> stg/orders.amount transformed",
            "raw/orders.status -> stg/orders.amount filter",
            "stg/orders.customer -> marts/by_customer.revenue filter",
        ]
    );
    // Downstream of raw/orders.amount, as a tree.
    let tree = p
        .run(&[
            "lineage",
            "raw/orders",
            "--column",
            "amount",
            "--downstream",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        tree.contains("└── stg/orders.amount  transformed")
            && tree.contains("marts/by_customer.revenue  aggregated")
            && tree.contains("marts/top.double_revenue  transformed"),
        "{tree}"
    );
    // A filter column reaches every output downstream of it, as a filter.
    let v = p
        .run(&[
            "lineage",
            "raw/orders",
            "--column",
            "status",
            "--downstream",
            "--json",
        ])
        .ok()
        .json();
    let down: Vec<String> = v["downstream"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{} {}",
                c["asset"].as_str().unwrap(),
                c["column"].as_str().unwrap(),
                c["how"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        down,
        [
            "stg/orders.amount filter",
            "stg/orders.customer filter",
            "stg/orders.id filter"
        ]
    );
    let dot = p
        .run(&[
            "lineage",
            "marts/top",
            "--column",
            "double_revenue",
            "--format",
            "dot",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        dot.starts_with("digraph")
            && dot.contains(
                "\"stg/orders.amount\" -> \"marts/by_customer.revenue\" [label=\"aggregated\"]"
            ),
        "{dot}"
    );
}

#[test]
fn bad_column_lineage_requests_are_refused() {
    let p = project();
    let r = p.run(&["lineage", "marts/top", "--column", "double_revenue"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0420") && r.stderr.contains("no recorded column lineage"),
        "{}",
        r.stderr
    );
    p.run(&["materialize"]).ok();
    let r = p.run(&["lineage", "marts/top", "--column", "revenue"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0420") && r.stderr.contains("customer, double_revenue"),
        "{}",
        r.stderr
    );
    let r = p.run(&["lineage", "marts/nope", "--column", "x"]);
    r.code(2);
    assert!(r.stderr.contains("E0402"), "{}", r.stderr);
}

#[test]
fn a_recovered_materialization_keeps_its_column_lineage() {
    let p = project();
    let out = run_in_env(
        p.path(),
        &["materialize", "-c", "1"],
        &[("SPINE_FAULT", "crash_after_commit:stg/orders".into())],
    );
    assert_ne!(out.code, 0, "the fault should abort the process");
    p.run(&["materialize"]).ok();
    // Recorded from the commit, not recomputed: one materialization of stg/orders.
    let n = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM spine.materializations WHERE asset_key = 'stg/orders'",
        ])
        .ok()
        .json();
    assert_eq!(n, serde_json::json!([{"n": 1}]));
    let rows = p
        .run(&["sql", "--json", "SELECT column_name, upstream_column, how FROM spine.column_lineage WHERE asset_key = 'stg/orders' AND how <> 'filter' ORDER BY position"])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"column_name": "id", "upstream_column": "id", "how": "identity"},
            {"column_name": "customer", "upstream_column": "customer", "how": "identity"},
            {"column_name": "amount", "upstream_column": "amount", "how": "transformed"},
        ])
    );
}

/// A command asset declares where its columns come from (`schema:` … `from:`); the walk crosses it
/// from a SQL asset below to the SQL asset above, and a `from` naming a non-upstream is E0250.
#[test]
fn a_command_assets_declared_lineage_is_walked_through() {
    let p = project();
    p.write(
        "assets/cmd.yaml",
        "key: reports/scaled\nkind: command\ndeps: [marts/by_customer]\ncommand: [python3, -c, \"import os; open(os.environ['SPINE_OUTPUT_DIR']+'/r.jsonl','w').write('{\\\"customer\\\": 1, \\\"scaled\\\": 2.5}\\\\n')\"]\nschema:\n  - {name: customer, type: int64, from: marts/by_customer.customer, how: identity}\n  - {name: scaled, type: float64, from: [marts/by_customer.revenue, marts/by_customer.n]}\n",
    );
    p.write(
        "assets/top_scaled.yaml",
        "key: reports/top_scaled\nkind: sql\nquery: SELECT MAX(scaled) AS best FROM reports.scaled\n",
    );
    p.run(&["materialize"]).ok();
    let v = p
        .run(&[
            "lineage",
            "reports/top_scaled",
            "--column",
            "best",
            "--upstream",
            "--depth",
            "2",
            "--json",
        ])
        .ok()
        .json();
    let edges = edges(&v);
    assert_eq!(
        edges,
        [
            "reports/scaled.scaled -> reports/top_scaled.best aggregated",
            "marts/by_customer.n -> reports/scaled.scaled transformed",
            "marts/by_customer.revenue -> reports/scaled.scaled transformed",
        ]
    );
    p.write(
        "assets/cmd.yaml",
        "key: reports/scaled\nkind: command\ncommand: [python3, -c, \"pass\"]\nschema:\n  - {name: customer, type: int64, from: raw/orders.customer}\n",
    );
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0250")
            && r.stderr
                .contains("'raw/orders' is not an upstream of this asset"),
        "{}",
        r.stderr
    );
}

/// "What does this source column feed?" A source records no column lineage of its own (its columns
/// start there), but `--downstream` from one of its columns walks what is computed from it; a
/// column it does not have is still E0420 (issue 27, defect 6).
#[test]
fn downstream_lineage_starts_at_a_source_column() {
    let p = Project::new(&[
        ("assets/orders.yaml", "key: raw/orders\nkind: source\npath: ../data/orders.csv\n"),
        (
            "assets/totals.yaml",
            "key: totals\nkind: sql\nquery: SELECT customer, SUM(amount) AS revenue FROM raw.orders GROUP BY customer\n",
        ),
        ("data/orders.csv", "customer,amount\na,1.5\nb,2.0\na,3.0\n"),
    ]);
    p.run(&["materialize"]).ok();
    let v = p
        .run(&[
            "lineage",
            "raw/orders",
            "--column",
            "amount",
            "--downstream",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        edges(&v),
        ["raw/orders.amount -> totals.revenue aggregated"],
        "{v}"
    );
    let tree = p
        .run(&[
            "lineage",
            "raw/orders",
            "--column",
            "amount",
            "--downstream",
        ])
        .ok()
        .stdout
        .clone();
    assert!(tree.contains("totals.revenue"), "{tree}");
    // A source column nothing reads yet: an empty walk, not an error.
    p.write("data/orders.csv", "customer,amount,note\na,1.5,x\n");
    p.run(&["materialize"]).ok();
    let v = p
        .run(&[
            "lineage",
            "raw/orders",
            "--column",
            "note",
            "--downstream",
            "--json",
        ])
        .ok()
        .json();
    assert!(edges(&v).is_empty(), "{v}");
    let r = p.run(&["lineage", "raw/orders", "--column", "nope", "--downstream"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0420") && r.stderr.contains("customer, amount, note"),
        "{}",
        r.stderr
    );
}
