//! `kind: training_set` end to end through the CLI: planned, materialized and versioned like any
//! asset, point-in-time correct on data where a naive join leaks, stale when a feature view changes,
//! and a bad definition refused by name (E0260, exit 2).

use crate::common::Project;

const LABELS: &str = r#"assets:
  - key: labels/drivers
    kind: sql
    query: |
      SELECT * FROM (VALUES
        ('d1', CAST('2026-01-01T10:00:00' AS TIMESTAMP), 1),
        ('d1', CAST('2026-01-01T12:00:00' AS TIMESTAMP), 0),
        ('d2', CAST('2026-01-01T10:00:00' AS TIMESTAMP), 1),
        ('d3', CAST('2026-01-01T10:00:00' AS TIMESTAMP), 0)
      ) AS t(driver, ts, label)
"#;

fn stats(late_rate: f64) -> String {
    format!(
        r#"assets:
  - key: features/driver_stats
    kind: sql
    query: |
      SELECT * FROM (VALUES
        ('d1', CAST('2026-01-01T09:00:00' AS TIMESTAMP), 0.1),
        ('d1', CAST('2026-01-01T11:00:00' AS TIMESTAMP), 0.5),
        ('d1', CAST('2026-01-01T13:00:00' AS TIMESTAMP), {late_rate}),
        ('d2', CAST('2026-01-01T04:00:00' AS TIMESTAMP), 0.2)
      ) AS t(driver, event_ts, rate)
"#
    )
}

const TRAINING: &str = r#"assets:
  - key: training/drivers
    kind: training_set
    entities: {asset: labels/drivers, timestamp: ts}
    features:
      - asset: features/driver_stats
        keys: [driver]
        timestamp: event_ts
        ttl: 3h
        columns: [rate]
"#;

#[test]
fn a_training_set_is_a_point_in_time_join_materialized_like_any_asset() {
    let p = Project::new(&[
        ("assets/labels.yaml", LABELS),
        ("assets/stats.yaml", &stats(0.9)),
        ("assets/training.yaml", TRAINING),
    ]);
    p.run(&["check"]).ok();
    let list = p.run(&["list", "--json"]).ok().json();
    let training = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "training/drivers")
        .unwrap_or_else(|| panic!("{list}"))
        .clone();
    assert_eq!(training["kind"], "training_set", "{training}");
    let run = p.run(&["materialize", "--json"]).ok().json();
    assert_eq!(run["status"], "succeeded", "{run}");
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT driver, label, driver_stats__rate AS rate FROM training.drivers",
        ])
        .ok()
        .json();
    let got: Vec<(String, Option<f64>)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["driver"].as_str().unwrap().to_string(),
                r["rate"].as_f64(),
            )
        })
        .collect();
    // d1 at 10:00 knows 09:00's 0.1 (not 11:00's or 13:00's); at 12:00, 11:00's 0.5; d2's only row is
    // six hours old, past the 3h TTL; d3 has none. A naive join would give d1 0.9 twice.
    assert_eq!(
        got,
        [
            ("d1".to_string(), Some(0.1)),
            ("d1".to_string(), Some(0.5)),
            ("d2".to_string(), None),
            ("d3".to_string(), None),
        ]
    );
    // Fresh on a second run; a changed feature view makes it stale, and the values follow.
    let again = p.run(&["materialize", "--json"]).ok().json();
    let statuses = crate::common::step_statuses(&again);
    assert!(
        statuses.iter().all(|(_, s)| s == "up_to_date"),
        "{statuses:?}"
    );
    p.write("assets/stats.yaml", &stats(0.95));
    let third = p.run(&["materialize", "--json"]).ok().json();
    let statuses = crate::common::step_statuses(&third);
    assert!(
        statuses
            .iter()
            .any(|(k, s)| k == "training/drivers" && s == "succeeded"),
        "{statuses:?}"
    );
    // The future value changed; no row can see it.
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT MAX(driver_stats__rate) AS m FROM training.drivers",
        ])
        .ok()
        .json();
    assert_eq!(rows[0]["m"].as_f64(), Some(0.5), "{rows}");
}

#[test]
fn bad_training_set_definitions_are_refused_by_name() {
    for (bad, says) in [
        (
            TRAINING.replace("ttl: 3h", "ttl: three hours"),
            "ttl 'three hours' of 'features/driver_stats' is not a duration",
        ),
        (
            TRAINING.replace("columns: [rate]", "columns: []"),
            "needs `keys:` and `columns:`",
        ),
        (TRAINING.replace("keys: [driver]", "keyz: [driver]"), "keyz"),
    ] {
        let p = Project::new(&[
            ("assets/labels.yaml", LABELS),
            ("assets/stats.yaml", &stats(0.9)),
            ("assets/training.yaml", &bad),
        ]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains(says), "{}", r.stderr);
        assert!(r.stderr.contains("assets/training.yaml"), "{}", r.stderr);
    }
}

#[test]
fn check_plans_a_training_set_and_its_columns_carry_lineage() {
    let below = "key: marts/positives\nkind: sql\nquery: SELECT driver, driver_stats__rate FROM training.drivers WHERE label = 1\n";
    let p = Project::new(&[
        ("assets/labels.yaml", LABELS),
        ("assets/stats.yaml", &stats(0.9)),
        ("assets/training.yaml", TRAINING),
        ("assets/below.yaml", below),
    ]);
    // The SQL below the training set plans before anything ran.
    let check = p.run(&["check", "--json"]).ok().json();
    assert_eq!(check["sql_planned"], 3, "{check}");
    assert_eq!(check["unplanned"], serde_json::json!([]), "{check}");
    p.run(&["materialize"]).ok();
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT column_name, upstream_key, upstream_column FROM spine.column_lineage \
             WHERE asset_key = 'training/drivers' AND how = 'identity' ORDER BY column_name",
        ])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"column_name": "driver", "upstream_key": "labels/drivers", "upstream_column": "driver"},
            {"column_name": "driver_stats__rate", "upstream_key": "features/driver_stats", "upstream_column": "rate"},
            {"column_name": "label", "upstream_key": "labels/drivers", "upstream_column": "label"},
            {"column_name": "ts", "upstream_key": "labels/drivers", "upstream_column": "ts"},
        ])
    );
    // A feature column the feature asset does not have: `check` says so before anything runs.
    let bad = Project::new(&[
        ("assets/labels.yaml", LABELS),
        ("assets/stats.yaml", &stats(0.9)),
        (
            "assets/training.yaml",
            &TRAINING.replace("columns: [rate]", "columns: [rat]"),
        ),
    ]);
    let r = bad.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0260")
            && r.stderr.contains("rat")
            && r.stderr.contains("assets/training.yaml"),
        "{}",
        r.stderr
    );
}
