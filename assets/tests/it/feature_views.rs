//! `kind: feature_view` end to end through the CLI: trailing windows over a daily-partitioned events
//! asset read through the derived `{last: N}` mapping, so a backfill of every partition equals one
//! unpartitioned computation; the schema is known to `assets check` before anything ran (SQL below a
//! view plans); the columns carry lineage; bad definitions exit 2 naming file and field.

use crate::common::Project;

/// Twenty events a day per partition, at times and values that differ from day to day.
const EVENTS: &str = r#"key: events/trips
kind: sql
partitions: {daily: {start: 2026-01-01, end: 2026-01-11}}
query: |
  SELECT 'd' || CAST((value * day) % 3 AS VARCHAR) AS driver,
         to_timestamp_seconds(CAST(to_unixtime(TIMESTAMP '{{ partition_start }}') AS BIGINT) + (value * 4111 * day) % 86400) AS ts,
         CAST((value * day) % 7 AS DOUBLE) + 0.5 AS fare,
         'r' || CAST((value + day) % 4 AS VARCHAR) AS rider
  FROM generate_series(1, 20) AS g(value)
  CROSS JOIN (SELECT CAST(date_part('day', TIMESTAMP '{{ partition_start }}') AS BIGINT) AS day) AS d
"#;

fn view(key: &str, partitioning: &str) -> String {
    format!(
        r#"key: {key}
kind: feature_view
from: events/trips
entities: [driver]
timestamp: ts
{partitioning}
features:
  - {{aggregations: [count], windows: [1h, 1d, 3d]}}
  - {{column: fare, aggregations: [sum, mean, max, last], windows: [1d, 3d]}}
  - {{column: rider, aggregations: [distinct], windows: [3d]}}
"#
    )
}

const BELOW: &str = "key: marts/busy
kind: sql
query: SELECT driver, ts, count_1d FROM features.daily WHERE count_3d > 20
";

const COLUMNS: &str =
    "driver, ts, count_1h, count_1d, count_3d, fare_sum_1d, fare_sum_3d, fare_mean_1d, \
  fare_mean_3d, fare_max_1d, fare_max_3d, fare_last_1d, fare_last_3d, rider_distinct_3d";

fn project() -> Project {
    Project::new(&[
        ("assets/events.yaml", EVENTS),
        (
            "assets/daily.yaml",
            &view(
                "features/daily",
                "partitions: {daily: {start: 2026-01-01, end: 2026-01-11}}",
            ),
        ),
        ("assets/full.yaml", &view("features/full", "every: 1d")),
        ("assets/busy.yaml", BELOW),
    ])
}

fn rows(p: &Project, table: &str) -> serde_json::Value {
    p.run(&[
        "sql",
        "--json",
        &format!("SELECT {COLUMNS} FROM {table} ORDER BY driver, ts"),
    ])
    .ok()
    .json()
}

#[test]
fn a_backfill_of_every_partition_equals_one_full_computation() {
    let p = project();
    // Before anything ran, the view's schema is known: the SQL below it plans.
    let check = p.run(&["check", "--json"]).ok().json();
    assert_eq!(check["sql_planned"], 2, "{check}");
    assert_eq!(check["unplanned"], serde_json::json!([]), "{check}");

    let b = p
        .run(&[
            "backfill",
            "events/trips",
            "features/daily",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-10",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(b["state"], "succeeded", "{b}");
    p.run(&["materialize", "features/full", "marts/busy"]).ok();

    let daily = rows(&p, "features.daily");
    let full = rows(&p, "features.full");
    let n = daily.as_array().unwrap().len();
    // Three drivers over ten cutoffs (the ends of 2026-01-01 … 01-10).
    assert_eq!(n, 30, "{daily}");
    assert_eq!(daily, full);
    // The three-day windows reach into earlier partitions: the derived `{last: 3}` read them.
    let spread = p
        .run(&[
            "sql",
            "--json",
            "SELECT COUNT(*) AS n FROM features.daily WHERE count_3d > count_1d",
        ])
        .ok()
        .json();
    assert!(spread[0]["n"].as_i64().unwrap() > 20, "{spread}");
    // Each window holds the events before its cutoff, checked against the events themselves.
    let recount = p
        .run(&[
            "sql",
            "--json",
            "SELECT f.driver, f.ts, f.count_3d, COUNT(e.ts) AS events, f.fare_sum_3d, SUM(e.fare) AS fares \
             FROM features.daily f JOIN events.trips e ON e.driver = f.driver \
               AND e.ts >= f.ts - INTERVAL '3 days' AND e.ts < f.ts \
             GROUP BY f.driver, f.ts, f.count_3d, f.fare_sum_3d",
        ])
        .ok()
        .json();
    for r in recount.as_array().unwrap() {
        assert_eq!(r["count_3d"], r["events"], "{r}");
        let (a, b) = (
            r["fare_sum_3d"].as_f64().unwrap(),
            r["fares"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{r}");
    }
    assert_eq!(recount.as_array().unwrap().len(), 30);

    // Column lineage: an aggregate comes from its column; the entity key is carried through.
    let lineage = p
        .run(&[
            "sql",
            "--json",
            "SELECT column_name, upstream_column, how FROM spine.column_lineage \
             WHERE asset_key = 'features/daily' AND column_name IN ('driver', 'fare_sum_3d', 'rider_distinct_3d') \
               AND how <> 'filter' ORDER BY column_name, upstream_column",
        ])
        .ok()
        .json();
    let got: Vec<String> = lineage
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} <- {} {}",
                r["column_name"], r["upstream_column"], r["how"]
            )
            .replace('"', "")
        })
        .collect();
    assert!(
        got.contains(&"driver <- driver identity".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"fare_sum_3d <- fare aggregated".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"rider_distinct_3d <- rider aggregated".to_string()),
        "{got:?}"
    );
    // And SQL below the (partitioned) view reads its columns.
    let below = p
        .run(&[
            "sql",
            "--json",
            "SELECT upstream_key, upstream_column, how FROM spine.column_lineage \
             WHERE asset_key = 'marts/busy' AND column_name = 'count_1d' ORDER BY how DESC",
        ])
        .ok()
        .json();
    assert_eq!(
        below,
        serde_json::json!([
            {"upstream_key": "features/daily", "upstream_column": "count_1d", "how": "identity"},
            {"upstream_key": "features/daily", "upstream_column": "count_3d", "how": "filter"},
        ])
    );
}

#[test]
fn bad_feature_views_exit_2_naming_file_and_field() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "features:\n  - {aggregations: [median], windows: [1d]}\n",
            "E0261",
            "unknown aggregation 'median'",
        ),
        (
            "features:\n  - {aggregations: [sum], windows: [1d]}\n",
            "E0261",
            "'sum' needs a `column:`",
        ),
        (
            "features:\n  - {aggregations: [count], windows: [one day]}\n",
            "E0261",
            "window 'one day' is not a duration",
        ),
        (
            "every: 1d\npartitions: {daily: {start: 2026-01-01}}\nfeatures:\n  - {aggregations: [count], windows: [1d]}\n",
            "E0261",
            "`every` is for an unpartitioned view",
        ),
        (
            "partitions: {static: [a, b]}\nfeatures:\n  - {aggregations: [count], windows: [1d]}\n",
            "E0261",
            "partitions are time windows",
        ),
        (
            "partitions: {daily: {start: 2026-01-01, end: 2026-01-11}}\npartition_mapping: {events/trips: {last: 1}}\nfeatures:\n  - {aggregations: [count], windows: [2d]}\n",
            "E0212",
            "{last: 2}",
        ),
    ];
    for (fields, code, says) in cases {
        let yaml = format!(
            "key: features/bad\nkind: feature_view\nfrom: events/trips\nentities: [driver]\ntimestamp: ts\n{fields}"
        );
        let p = Project::new(&[("assets/events.yaml", EVENTS), ("assets/bad.yaml", &yaml)]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains(code)
                && r.stderr.contains(says)
                && r.stderr.contains("assets/bad.yaml"),
            "{yaml}\n{}",
            r.stderr
        );
    }
    // A timestamp column that is not a timestamp: found by `check` from the upstream's schema.
    let yaml = "key: features/bad\nkind: feature_view\nfrom: events/trips\nentities: [driver]\ntimestamp: rider\nfeatures:\n  - {aggregations: [count], windows: [1d]}\n";
    let p = Project::new(&[("assets/events.yaml", EVENTS), ("assets/bad.yaml", yaml)]);
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0261")
            && r.stderr
                .contains("'events/trips'.rider is Utf8View, not a timestamp"),
        "{}",
        r.stderr
    );
}
