//! Multi-dimensional partitions (date × region) end to end through the CLI: keys `date|region`, one
//! Delta partition column per dimension (read back by Python `deltalake`), per-dimension placeholders,
//! and the inferred mappings to and from a one-dimensional asset with one of the dimensions.

use crate::common::*;

const DAYS: &str = "daily: {start: 2026-01-01, end: 2026-01-04}";

fn project() -> Project {
    let multi =
        format!("partitions:\n  multi:\n    region: {{static: [eu, us]}}\n    date: {{{DAYS}}}\n");
    Project::new(&[
        (
            "assets/rates.yaml",
            &format!("key: rates\nkind: sql\npartitions: {{{DAYS}}}\nquery: SELECT 2 AS rate, '{{{{ partition_key }}}}' AS on_day\n"),
        ),
        (
            "assets/sales.yaml",
            &format!("key: sales\nkind: sql\n{multi}query: >\n  SELECT '{{{{ partition_key.region }}}}' AS r, '{{{{ partition_key.date }}}}' AS d,\n  '{{{{ partition_key }}}}' AS k, TIMESTAMP '{{{{ partition_start }}}}' AS starts, n * rate AS amount\n  FROM (VALUES (1), (2)) AS t(n), rates\n"),
        ),
        (
            "assets/by_day.yaml",
            &format!("key: by_day\nkind: sql\npartitions: {{{DAYS}}}\nquery: SELECT COUNT(*) AS rows, COUNT(DISTINCT region) AS regions, SUM(amount) AS amount FROM sales\n"),
        ),
        (
            "assets/by_region.yaml",
            &format!("key: by_region\nkind: sql\n{multi}query: SELECT COUNT(*) AS rows, MIN(k) AS k FROM sales\n"),
        ),
    ])
}

const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
rows = dt.to_pyarrow_table().to_pylist()
out = {"partition_columns": dt.metadata().partition_columns, "rows": rows}
sys.stdout.write(json.dumps(out, default=str))
sys.stdout.flush()
os._exit(0)
"#;

#[test]
fn multi_dimensional_partitions_are_keys_columns_and_mappings() {
    let p = project();
    let v = p.run(&["materialize", "--json"]).ok().json();
    let steps: Vec<String> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["key"].as_str().unwrap();
            match s["partition"].as_str() {
                Some(p) => format!("{key}[{p}] {}", s["status"].as_str().unwrap()),
                None => format!("{key} {}", s["status"].as_str().unwrap()),
            }
        })
        .collect();
    assert_eq!(steps.len(), 3 + 6 + 3 + 6, "{steps:?}");
    assert!(steps.iter().all(|s| s.ends_with(" succeeded")), "{steps:?}");
    assert!(
        steps.contains(&"sales[2026-01-02|us] succeeded".to_string()),
        "{steps:?}"
    );

    // One Delta partition column per dimension, in dimension (name) order; another reader agrees.
    let t = python_json(
        READER,
        &[p.path().join("warehouse/sales").display().to_string()],
    );
    assert_eq!(
        t["partition_columns"],
        serde_json::json!(["date", "region"])
    );
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "6 partitions × 2 rows");
    for r in rows {
        assert_eq!(r["date"], r["d"], "{r}");
        assert_eq!(r["region"], r["r"], "{r}");
        assert_eq!(
            r["k"].as_str().unwrap(),
            format!("{}|{}", r["d"].as_str().unwrap(), r["r"].as_str().unwrap())
        );
        assert!(
            r["starts"]
                .as_str()
                .unwrap()
                .starts_with(r["d"].as_str().unwrap()),
            "{r}"
        );
    }

    // Multi → one dimension: a day reads every region of its date; multi ← one dimension: each
    // partition read only its date's rate (2 per row: amounts 2 and 4); identity between multis.
    let days = p
        .run(&[
            "sql",
            "--json",
            "SELECT partition_key AS p, rows, regions, amount FROM by_day ORDER BY p",
        ])
        .ok()
        .json();
    assert_eq!(
        days,
        serde_json::json!([
            {"p": "2026-01-01", "rows": 4, "regions": 2, "amount": 12},
            {"p": "2026-01-02", "rows": 4, "regions": 2, "amount": 12},
            {"p": "2026-01-03", "rows": 4, "regions": 2, "amount": 12}
        ])
    );
    let same = p
        .run(&["sql", "--json", "SELECT date, region, rows, k FROM by_region WHERE rows <> 2 OR k <> date || '|' || region"])
        .ok()
        .json();
    assert_eq!(
        same,
        serde_json::json!([]),
        "identity reads exactly its own partition"
    );

    // A changed rate for one day makes exactly that day's partitions downstream stale.
    p.run(&[
        "materialize",
        "rates",
        "--partition",
        "2026-01-02",
        "--force",
    ])
    .ok();
    let st = p.run(&["status", "--json"]).ok().json();
    let sales = st
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "sales")
        .unwrap();
    assert_eq!(sales["partitions"]["stale"], 2, "{sales}");
    assert_eq!(sales["partitions"]["fresh"], 4, "{sales}");
    let part = p
        .run(&[
            "materialize",
            "sales",
            "--partition",
            "2026-01-02|eu",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(part["steps"][0]["status"], "succeeded", "{part}");
    // A key of one dimension selects every partition with it: the day's other region.
    let day = p
        .run(&[
            "materialize",
            "sales",
            "--partition",
            "2026-01-02",
            "--json",
        ])
        .ok()
        .json();
    let ran: Vec<(&str, &str)> = day["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["partition"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ran,
        [
            ("2026-01-02|eu", "up_to_date"),
            ("2026-01-02|us", "succeeded")
        ]
    );
}

#[test]
fn bad_multi_dimensional_partitions_are_clear_errors() {
    let p = project();
    for (args, why) in [
        (
            vec!["materialize", "sales", "--partition", "2026-01-02|eu|x"],
            "one key per dimension joined by '|'",
        ),
        (
            vec!["materialize", "sales", "--partition", "apac"],
            "one key per dimension joined by '|'",
        ),
        (
            vec!["materialize", "sales", "--partition", "2026-01-02|apac"],
            "dimension 'region'",
        ),
        (
            vec!["materialize", "sales", "--partition", "2026-02-02|eu"],
            "dimension 'date'",
        ),
    ] {
        let r = p.run(&args);
        r.code(2);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    assert!(!p.path().join("warehouse/sales/_delta_log").exists());
    for (yaml, why) in [
        ("key: x\nkind: sql\npartitions: {multi: {region: {static: [eu]}}}\nquery: SELECT 1 AS a\n", "two to four dimensions"),
        ("key: x\nkind: sql\npartitions: {multi: {a: {daily: {start: 2026-01-01}}, b: {hourly: {start: 2026-01-01}}}}\nquery: SELECT 1 AS a\n", "at most one dimension"),
        ("key: x\nkind: sql\npartitions: {multi: {a: {static: [x]}, b: {static: [y]}}, column: c}\nquery: SELECT 1 AS a\n", "takes no `column`"),
        ("key: x\nkind: sql\npartitions: {multi: {a: {static: ['x|y']}, b: {static: [y]}}}\nquery: SELECT 1 AS a\n", "contains '|'"),
        ("key: x\nkind: sql\npartitions: {multi: {a: {static: [x]}, b: {static: [y]}}}\nquery: SELECT '{{ partition_key.c }}' AS a\n", "no dimension 'c'"),
        ("key: x\nkind: sql\npartitions: {static: [x]}\nquery: SELECT '{{ partition_key.c }}' AS a\n", "no dimension 'c'"),
    ] {
        let q = Project::new(&[("assets/x.yaml", yaml)]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains(why), "{yaml}: {}", r.stderr);
        assert!(r.stderr.contains("E0210"), "{yaml}: {}", r.stderr);
    }
}
