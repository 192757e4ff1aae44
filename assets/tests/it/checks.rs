//! Asset checks and write-audit-publish through the CLI: a failed `error` check keeps the new Delta
//! version unpublished, so downstream assets (in this run and later ones) read the last published
//! version — the downstream's recorded upstream Delta version proves it — until `assets publish`
//! releases it; `warn` checks only record; results are in `spine.check_results`; bad checks are clear.

use crate::common::*;

fn orders(rows: &str) -> String {
    format!(
        "key: orders
kind: sql
query: SELECT * FROM (VALUES {rows}) AS t(id, amount, status)
checks:
  - not_null: [id, amount]
  - unique: id
  - accepted_values: {{column: status, values: [paid, refunded]}}
  - row_count: {{min: 1, max_change_pct: 300}}
  - expression: amount >= 0
    severity: warn
"
    )
}

const TOTALS: &str = "key: totals
kind: sql
query: SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders
";

fn sql(p: &Project, q: &str) -> serde_json::Value {
    p.run(&["sql", "--json", q]).ok().json()
}

/// The Delta version of `orders` the latest materialization of `totals` read.
fn totals_read(p: &Project) -> serde_json::Value {
    sql(
        p,
        "SELECT l.upstream_delta_version AS v FROM spine.lineage l JOIN spine.materializations m \
         ON m.id = l.materialization_id WHERE m.asset_key = 'totals' ORDER BY m.id DESC LIMIT 1",
    )[0]["v"]
        .clone()
}

#[test]
fn a_failed_check_keeps_downstream_on_the_published_version_until_publish() {
    let good = orders("(1, 10.0, 'paid'), (2, 5.0, 'refunded')");
    let p = Project::new(&[
        ("assets/orders.yaml", &good),
        ("assets/totals.yaml", TOTALS),
    ]);
    p.run(&["materialize"]).ok();
    let passed = sql(
        &p,
        "SELECT COUNT(*) AS n FROM spine.check_results WHERE passed",
    );
    assert_eq!(passed, serde_json::json!([{"n": 5}]));
    assert_eq!(totals_read(&p), 0);

    // A duplicate id and an unknown status: the new version is written, checked, kept unpublished.
    p.write(
        "assets/orders.yaml",
        &orders("(1, 10.0, 'paid'), (1, 7.0, 'lost'), (3, -1.0, 'paid')"),
    );
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let v = r.json();
    let step = |k: &str| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(step("orders")["status"], "failed", "{v}");
    let err = step("orders")["error"].as_str().unwrap().to_string();
    assert!(err.contains("unique_id failed: 1 failing row(s)"), "{err}");
    assert!(err.contains("accepted_values_status failed"), "{err}");
    assert!(err.contains("assets publish orders --version 1"), "{err}");
    assert_eq!(step("totals")["status"], "skipped", "{v}");
    assert_eq!(
        sql(&p, "SELECT delta_version AS v, published AS p FROM spine.materializations WHERE asset_key = 'orders' ORDER BY id"),
        serde_json::json!([{"v": 0, "p": true}, {"v": 1, "p": false}])
    );
    // The failing rows are kept as samples; the warn check failed without blocking.
    let failed = sql(
        &p,
        "SELECT check_name AS c, failing_rows AS n, severity AS s FROM spine.check_results WHERE NOT passed ORDER BY c",
    );
    assert_eq!(
        failed,
        serde_json::json!([
            {"c": "accepted_values_status", "n": 1, "s": "error"},
            {"c": "expression_5", "n": 1, "s": "warn"},
            {"c": "unique_id", "n": 1, "s": "error"}
        ])
    );
    let sample = sql(
        &p,
        "SELECT samples FROM spine.check_results WHERE check_name = 'unique_id' AND NOT passed",
    );
    assert!(
        sample[0]["samples"]
            .as_str()
            .unwrap()
            .contains("\"duplicates\":2"),
        "{sample}"
    );

    // `assets run` lists the run's check outcomes.
    let run_id = v["run_id"].as_str().unwrap().to_string();
    let shown = p.run(&["run", &run_id]).ok().stdout.clone();
    assert!(
        shown.contains("unique_id") && shown.contains("failed"),
        "{shown}"
    );
    let shown = p.run(&["run", &run_id, "--json"]).ok().json();
    assert_eq!(shown["checks"].as_array().unwrap().len(), 5, "{shown}");
    // `status` says what is held back and how to release it.
    let st = p.run(&["status"]).ok().stdout.clone();
    assert!(
        st.contains("version 1 held back by failed checks (unique_id, accepted_values_status)")
            || st.contains(
                "version 1 held back by failed checks (accepted_values_status, unique_id)"
            ),
        "{st}"
    );
    let sj = p.run(&["status", "orders", "--json"]).ok().json();
    assert_eq!(sj[0]["held_back"][0]["delta_version"], 1, "{sj}");
    // Later runs read the published version 0, however often the downstream is forced.
    p.run(&["materialize", "totals", "--force"]).ok();
    assert_eq!(totals_read(&p), 0);
    assert_eq!(
        sql(&p, "SELECT n FROM totals"),
        serde_json::json!([{"n": 2}])
    );
    let checks = p.run(&["checks", "orders"]);
    checks.code(0);

    let bad = p.run(&["publish", "orders", "--version", "7", "--reason", "x"]);
    bad.code(2);
    assert!(bad.stderr.contains("E0231"), "{}", bad.stderr);
    let out = p
        .run(&[
            "publish",
            "orders",
            "--version",
            "1",
            "--reason",
            "duplicates are expected today",
        ])
        .ok()
        .stdout
        .clone();
    assert!(out.contains("published orders version 1"), "{out}");
    assert_eq!(
        sql(&p, "SELECT reason FROM spine.publications"),
        serde_json::json!([{"reason": "duplicates are expected today"}])
    );
    let sj = p.run(&["status", "orders", "--json"]).ok().json();
    assert!(sj[0].get("held_back").is_none(), "{sj}");
    // Now downstream is stale and reads version 1; `checks` re-runs the checks and fails.
    p.run(&["materialize", "totals"]).ok();
    assert_eq!(totals_read(&p), 1);
    assert_eq!(
        sql(&p, "SELECT n FROM totals"),
        serde_json::json!([{"n": 3}])
    );
    let checks = p.run(&["checks", "orders", "--json"]);
    checks.code(1);
    let c = checks.json();
    assert_eq!(c[0]["checks"].as_array().unwrap().len(), 5, "{c}");
}

#[test]
fn checks_on_missing_columns_and_bad_checks_are_clear() {
    let p = Project::new(&[(
        "assets/orders.yaml",
        "key: orders\nkind: sql\nquery: SELECT 1 AS id\nchecks:\n  - not_null: [amount]\n",
    )]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let err = r.json()["steps"][0]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("not_null_amount could not run") && err.contains("amount"),
        "{err}"
    );
    assert_eq!(
        sql(&p, "SELECT published FROM spine.materializations"),
        serde_json::json!([{"published": false}])
    );
    for (yaml, says) in [
        ("checks:\n  - nul: [id]\n", "unknown check 'nul'"),
        (
            "checks:\n  - relationships: {column: id, to: ghosts, field: id}\n",
            "'ghosts', which is not an asset",
        ),
        ("checks:\n  - row_count: {min: 3, max: 1}\n", "above max"),
        ("checks: {not_null: id}\n", "is a list"),
    ] {
        let q = Project::new(&[(
            "assets/x.yaml",
            &format!("key: x\nkind: sql\nquery: SELECT 1 AS id\n{yaml}"),
        )]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0230") && r.stderr.contains(says),
            "{yaml}: {}",
            r.stderr
        );
    }
}

#[test]
fn relationships_and_freshness_checks() {
    let p = Project::new(&[
        ("assets/customers.yaml", "key: customers\nkind: sql\nquery: SELECT * FROM (VALUES (1), (2)) AS t(id)\n"),
        (
            "assets/orders.yaml",
            "key: orders\nkind: sql\nquery: SELECT customer_id, at, now() - INTERVAL '2 days' AS old FROM (VALUES (1, now()), (3, now() - INTERVAL '3 days')) AS t(customer_id, at)\nchecks:\n  - relationships: {column: customer_id, to: customers, field: id}\n    severity: warn\n  - freshness: {column: at, max_age: 1h}\n  - freshness: {column: old, max_age: 1d}\n    name: too_old\n    severity: warn\n",
        ),
    ]);
    // The asset a `relationships` check reads is an upstream: materialized first in one run.
    p.run(&["materialize", "orders"]).code(1);
    assert!(p
        .run(&["list", "+orders"])
        .ok()
        .stdout
        .contains("customers"));
    p.run(&["materialize", "+orders"]).ok();
    let r = sql(&p, "SELECT check_name AS c, passed AS p, failing_rows AS n FROM spine.check_results ORDER BY c");
    assert_eq!(
        r,
        serde_json::json!([
            {"c": "freshness_at", "p": true, "n": 0},
            {"c": "relationships_customer_id", "p": false, "n": 1},
            {"c": "too_old", "p": false, "n": 1}
        ])
    );
}

/// A partition's checks see only that partition's rows: `id` repeats across partitions, not within.
#[test]
fn a_partitions_checks_see_its_rows_only() {
    let p = Project::new(&[(
        "assets/events.yaml",
        "key: events\nkind: sql\npartitions: {static: [a, b]}\nquery: SELECT 1 AS id, '{{ partition_key }}' AS src\nchecks:\n  - unique: id\n  - row_count: {max: 1}\n",
    )]);
    p.run(&["materialize"]).ok();
    assert_eq!(
        sql(&p, "SELECT partition_key AS p, COUNT(*) AS n, MIN(passed) AS ok FROM spine.check_results GROUP BY 1 ORDER BY 1"),
        serde_json::json!([{"p": "a", "n": 2, "ok": true}, {"p": "b", "n": 2, "ok": true}])
    );
}

/// A partitioned asset whose partition `b` was re-materialized and held back by a failed check, then
/// whose partition `c` was published: the table's latest version holds `b`'s held-back rows beside
/// `c`'s published ones. Downstream reads (all partitions, or a mapped window of them) and `assets sql`
/// see `b` as published, never the held-back rows.
#[test]
fn held_back_partitions_stay_invisible_to_readers_of_later_versions() {
    let events = |v: i64| {
        format!(
            "key: events\nkind: sql\npartitions: {{static: [a, b, c]}}\n\
             query: SELECT {v} AS v, '{{{{ partition_key }}}}' AS src\n\
             checks:\n  - expression: v < 100\n"
        )
    };
    let p = Project::new(&[
        ("assets/events.yaml", &events(1)),
        (
            "assets/total.yaml",
            "key: total\nkind: sql\nquery: SELECT SUM(v) AS s, COUNT(*) AS n FROM events\n",
        ),
        (
            "assets/window.yaml",
            "key: window\nkind: sql\npartitions: {static: [all]}\n\
             partition_mapping:\n  events: {map: {all: [a, b, c]}}\n\
             query: SELECT SUM(v) AS s, COUNT(*) AS n FROM events\n",
        ),
    ]);
    p.run(&["materialize"]).ok();
    assert_eq!(
        sql(&p, "SELECT s, n FROM total"),
        serde_json::json!([{"s": 3, "n": 3}])
    );

    // b: 1000 fails the check and is held back; then c: 2 passes and is published after it.
    p.write("assets/events.yaml", &events(1000));
    p.run(&["materialize", "events", "--partition", "b"])
        .code(1);
    p.write("assets/events.yaml", &events(2));
    p.run(&["materialize", "events", "--partition", "c"]).ok();
    assert_eq!(
        sql(&p, "SELECT partition_key AS k, published AS p FROM spine.materializations WHERE asset_key = 'events' AND partition_key = 'b' ORDER BY id"),
        serde_json::json!([{"k": "b", "p": true}, {"k": "b", "p": false}])
    );

    // a: 1 and b: 1 (published), c: 2.
    let want = serde_json::json!([{"s": 4, "n": 3}]);
    assert_eq!(
        sql(&p, "SELECT SUM(v) AS s, COUNT(*) AS n FROM events"),
        want
    );
    p.run(&["materialize", "total", "window"]).ok();
    assert_eq!(sql(&p, "SELECT s, n FROM total"), want);
    assert_eq!(sql(&p, "SELECT s, n FROM window"), want);

    // Publishing b releases its rows to every reader.
    let held = sql(&p, "SELECT delta_version AS v FROM spine.materializations WHERE asset_key = 'events' AND NOT published")[0]["v"].to_string();
    p.run(&[
        "publish",
        "events",
        "--partition",
        "b",
        "--version",
        &held,
        "--reason",
        "reviewed",
    ])
    .ok();
    let released = serde_json::json!([{"s": 1003, "n": 3}]);
    assert_eq!(
        sql(&p, "SELECT SUM(v) AS s, COUNT(*) AS n FROM events"),
        released
    );
    p.run(&["materialize", "total", "window"]).ok();
    assert_eq!(sql(&p, "SELECT s, n FROM total"), released);
    assert_eq!(sql(&p, "SELECT s, n FROM window"), released);
}
