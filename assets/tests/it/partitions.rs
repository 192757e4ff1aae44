//! Partitioned assets end to end through the CLI: each partition is its own step, written into its
//! Delta table's partition column and replaced atomically; a partitioned downstream reads only its own
//! upstream partition; an unpartitioned one reads them all; staleness is per partition. An independent
//! reader (Python `deltalake`) checks the tables.

use crate::common::*;

const EVENTS: &str = "key: events
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-04, timezone: Europe/Berlin}
  column: day
query: >
  SELECT n, TIMESTAMP '{{ partition_start }}' AS starts
  FROM (VALUES (10), (20)) AS t(n)
";

const DAILY_TOTAL: &str = "key: daily_total
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-04, timezone: Europe/Berlin}
query: SELECT SUM(n) AS total, COUNT(*) AS rows, MIN(day) AS day FROM events
";

/// A weekly rollup of the daily events: each week reads the days its window overlaps.
const WEEKLY: &str = "key: weekly_total
kind: sql
partitions:
  weekly: {start: 2025-12-29, end: 2026-01-05, timezone: Europe/Berlin}
query: SELECT SUM(n) AS total, COUNT(DISTINCT day) AS days FROM events
";

const OVERALL: &str = "key: overall
kind: sql
query: SELECT COUNT(*) AS rows, COUNT(DISTINCT day) AS days FROM events
";

const READER: &str = r#"
import json, os, sys
from deltalake import DeltaTable
out = {}
for key in sys.argv[2:]:
    dt = DeltaTable(sys.argv[1] + "/" + key)
    rows = dt.to_pyarrow_table().to_pylist()
    out[key] = {"rows": rows, "partition_columns": dt.metadata().partition_columns,
                "files": len(dt.file_uris())}
sys.stdout.write(json.dumps(out, default=str))
sys.stdout.flush()
os._exit(0)
"#;

fn read(p: &Project, keys: &[&str]) -> serde_json::Value {
    let mut args = vec![p.path().join("warehouse").display().to_string()];
    args.extend(keys.iter().map(|k| k.to_string()));
    python_json(READER, &args)
}

fn statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = match s["partition"].as_str() {
                Some(p) => format!("{}[{p}]", s["key"].as_str().unwrap()),
                None => s["key"].as_str().unwrap().to_string(),
            };
            (key, s["status"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn partitions_are_steps_written_and_replaced_one_at_a_time() {
    let p = Project::new(&[
        ("assets/events.yaml", EVENTS),
        ("assets/daily_total.yaml", DAILY_TOTAL),
        ("assets/overall.yaml", OVERALL),
        ("assets/weekly.yaml", WEEKLY),
    ]);
    let v = p.run(&["materialize", "--json"]).json();
    assert_eq!(v["status"], "succeeded", "{v}");
    let steps = statuses(&v);
    assert_eq!(
        steps.len(),
        8,
        "3 + 3 partitions, a week and the rollup: {steps:?}"
    );
    assert!(steps.iter().all(|(_, s)| s == "succeeded"), "{steps:?}");
    assert_eq!(steps[0].0, "events[2026-01-01]");
    let pos = |k: &str| steps.iter().position(|(s, _)| s == k).unwrap();
    assert!(pos("overall") > pos("events[2026-01-03]"), "{steps:?}");

    let t = read(&p, &["events", "daily_total", "overall", "weekly_total"]);
    // The week of 2025-12-29 overlaps the three days that exist.
    let week = &t["weekly_total"]["rows"][0];
    assert_eq!(
        (&week["total"], &week["days"]),
        (&serde_json::json!(90), &serde_json::json!(3)),
        "{week}"
    );
    assert_eq!(week["partition_key"], "2025-12-29");
    assert_eq!(t["events"]["partition_columns"], serde_json::json!(["day"]));
    let events = t["events"]["rows"].as_array().unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    // {{ partition_start }} is the window's start in its timezone: midnight in Berlin, 23:00 UTC.
    for (day, starts) in [
        ("2026-01-01", "2025-12-31 23:00:00"),
        ("2026-01-02", "2026-01-01 23:00:00"),
        ("2026-01-03", "2026-01-02 23:00:00"),
    ] {
        let of_day: Vec<_> = events.iter().filter(|r| r["day"] == day).collect();
        assert_eq!(of_day.len(), 2, "{day}: {events:?}");
        assert!(
            of_day
                .iter()
                .all(|r| r["starts"].as_str().unwrap().starts_with(starts)),
            "{of_day:?}"
        );
    }
    // Each daily total read only its own day of events.
    let totals = t["daily_total"]["rows"].as_array().unwrap();
    assert_eq!(totals.len(), 3, "{totals:?}");
    for r in totals {
        assert_eq!(r["total"], 30, "{r}");
        assert_eq!(r["rows"], 2, "{r}");
        assert_eq!(r["day"], r["partition_key"], "{r}");
    }
    assert_eq!(t["overall"]["rows"][0]["rows"], 6);
    assert_eq!(t["overall"]["rows"][0]["days"], 3);

    // A second run has nothing to do.
    let v = p.run(&["materialize", "--json"]).json();
    assert!(statuses(&v).iter().all(|(_, s)| s == "up_to_date"), "{v}");

    // Re-running one partition replaces exactly its rows: no duplicates, other days untouched.
    let v = p
        .run(&[
            "materialize",
            "events",
            "--partition",
            "2026-01-02",
            "--force",
            "--json",
        ])
        .json();
    assert_eq!(
        statuses(&v),
        [("events[2026-01-02]".to_string(), "succeeded".to_string())]
    );
    let t = read(&p, &["events"]);
    assert_eq!(t["events"]["rows"].as_array().unwrap().len(), 6, "{t}");
    assert_eq!(t["events"]["files"], 3, "one live file per day");

    // Staleness is per partition: only the mapped downstream partition and the rollup are stale.
    let st = p.run(&["status", "--json"]).json();
    let daily = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "daily_total")
        .unwrap();
    assert_eq!(
        daily["partitions"],
        serde_json::json!({"total": 3, "fresh": 2, "stale": 1, "missing": 0, "failed": 0, "rows": 3}),
        "{daily}"
    );
    let ranges = p.run(&["partitions", "daily_total", "--json"]).json();
    let short: Vec<(String, String, String, u64)> = ranges
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["first"].as_str().unwrap().to_string(),
                r["last"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let range = |a: &str, b: &str, s: &str, n| (a.to_string(), b.to_string(), s.to_string(), n);
    assert_eq!(
        short,
        [
            range("2026-01-01", "2026-01-01", "fresh", 1),
            range("2026-01-02", "2026-01-02", "stale", 1),
            range("2026-01-03", "2026-01-03", "fresh", 1)
        ]
    );
    assert!(
        ranges[1]["reason"]
            .as_str()
            .unwrap()
            .contains("events[2026-01-02]"),
        "{ranges}"
    );
    let text = p.run(&["partitions", "events"]);
    assert!(
        text.stdout.contains("2026-01-01..2026-01-03  fresh"),
        "{}",
        text.stdout
    );
    let r = p.run(&["partitions", "overall"]);
    r.code(2);
    assert!(r.stderr.contains("E0413"), "{}", r.stderr);
    let r = p.run(&["partitions", "event"]);
    r.code(2);
    assert!(r.stderr.contains("did you mean 'events'"), "{}", r.stderr);
    let v = p.run(&["materialize", "--json"]).json();
    let mut ran: Vec<String> = statuses(&v)
        .into_iter()
        .filter(|(_, s)| s == "succeeded")
        .map(|(k, _)| k)
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            "daily_total[2026-01-02]",
            "overall",
            "weekly_total[2025-12-29]"
        ],
        "{v}"
    );
}

#[test]
fn bad_partitions_are_clear_errors() {
    let p = Project::new(&[
        ("assets/events.yaml", EVENTS),
        (
            "assets/plain.yaml",
            "key: plain\nkind: sql\nquery: SELECT 1 AS x\n",
        ),
    ]);
    for (args, code) in [
        (
            vec!["materialize", "events", "--partition", "2026-01-09"],
            "E0411",
        ),
        (
            vec!["materialize", "events", "--partition", "2026/01/02"],
            "E0411",
        ),
        (
            vec![
                "materialize",
                "events",
                "--partition",
                "2026-01-03..2026-01-01",
            ],
            "E0411",
        ),
        (
            vec!["materialize", "plain", "--partition", "2026-01-01"],
            "E0412",
        ),
    ] {
        let r = p.run(&args);
        r.code(2);
        assert!(r.stderr.contains(code), "{args:?}: {}", r.stderr);
    }
    assert!(!p
        .path()
        .join("warehouse/events")
        .join("_delta_log")
        .exists());
    for (yaml, why) in [
        ("key: x\nkind: sql\npartitions: {daily: {start: 2026-01-01, timezone: Mars/Base}}\nquery: SELECT 1 AS a\n", "unknown timezone"),
        ("key: x\nkind: sql\npartitions: {weekly: {start: soon}}\nquery: SELECT 1 AS a\n", "is not a date"),
        ("key: x\nkind: sql\nquery: SELECT '{{ partition_key }}' AS a\n", "has no `partitions:`"),
        ("key: x\nkind: sql\npartitions: {static: [a]}\nquery: SELECT '{{ partition_day }}' AS a\n", "unknown placeholder"),
    ] {
        let q = Project::new(&[("assets/x.yaml", yaml)]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(r.stderr.contains(why), "{yaml}: {}", r.stderr);
    }
}

#[test]
fn rows_of_another_partition_fail_the_step() {
    let p = Project::new(&[(
        "assets/regions.yaml",
        "key: regions\nkind: sql\npartitions: {static: [eu, us]}\nquery: SELECT 'eu' AS partition_key, 1 AS n\n",
    )]);
    let v = p.run(&["materialize", "--json"]).json();
    let steps = statuses(&v);
    assert_eq!(
        steps[0],
        ("regions[eu]".to_string(), "succeeded".to_string())
    );
    assert_eq!(steps[1], ("regions[us]".to_string(), "failed".to_string()));
    let err = v["steps"][1]["error"].as_str().unwrap();
    assert!(err.contains("not the partition's key 'us'"), "{err}");
    let t = read(&p, &["regions"]);
    assert_eq!(
        t["regions"]["rows"].as_array().unwrap().len(),
        1,
        "only eu was committed: {t}"
    );
}

#[test]
fn lineage_of_a_partition_walks_the_recorded_materializations() {
    let p = Project::new(&[
        ("assets/events.yaml", EVENTS),
        ("assets/daily_total.yaml", DAILY_TOTAL),
        ("assets/weekly.yaml", WEEKLY),
    ]);
    p.run(&["materialize"]).ok();
    let v = p
        .run(&["lineage", "events", "--partition", "2026-01-02", "--json"])
        .ok()
        .json();
    // Readers in materialization order, which concurrent steps may swap.
    let mut readers: Vec<&str> = v["downstream"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    readers.sort();
    assert_eq!(
        readers,
        vec!["daily_total[2026-01-02]", "weekly_total[2025-12-29]"],
        "{v}"
    );
    let week = p
        .run(&[
            "lineage",
            "weekly_total",
            "--partition",
            "2025-12-29",
            "--upstream",
            "--json",
        ])
        .ok()
        .json();
    let read: Vec<&str> = week["upstream"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert_eq!(read.len(), 3, "the week's three existing days: {week}");
    assert!(week["downstream"].is_null());
    // A newer materialization of the day has not been read by anyone yet.
    p.run(&[
        "materialize",
        "events",
        "--partition",
        "2026-01-02",
        "--force",
    ])
    .ok();
    let v = p
        .run(&[
            "lineage",
            "events",
            "--partition",
            "2026-01-02",
            "--downstream",
            "--json",
        ])
        .ok()
        .json();
    assert!(v["downstream"]["children"].is_null(), "{v}");
    let text = p
        .run(&["lineage", "daily_total", "--partition", "2026-01-02"])
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains("upstream (what it read):\n└── events[2026-01-02]"),
        "{text}"
    );
    let bad = p.run(&["lineage", "events", "--partition", "2027-01-01"]);
    bad.code(2);
    assert!(bad.stderr.contains("E0411"), "{}", bad.stderr);
}

const ROLLING: &str = "key: rolling
kind: sql
partitions:
  daily: {start: 2026-01-01, end: 2026-01-04, timezone: Europe/Berlin}
partition_mapping:
  events: {last: 2}
query: SELECT SUM(n) AS total, COUNT(DISTINCT day) AS days, MIN(day) AS first_day FROM events
";

const PREVIOUS: &str = "key: previous
kind: sql
partitions:
  daily: {start: 2026-01-02, end: 2026-01-04, timezone: Europe/Berlin}
partition_mapping:
  events: {offset: -1}
query: SELECT MIN(day) AS day, COUNT(*) AS rows FROM events
";

const COUNTRIES: &str = "key: countries
kind: sql
partitions:
  static: [de, fr, us]
query: SELECT '{{ partition_key }}' AS country, 1 AS n
";

const REGIONS: &str = "key: regions
kind: sql
partitions:
  static: [emea, amer]
partition_mapping:
  countries: {map: {emea: [de, fr], amer: us}}
query: SELECT SUM(n) AS countries FROM countries
";

#[test]
fn explicit_mappings_read_exactly_their_partitions_and_make_exactly_them_stale() {
    let p = Project::new(&[
        ("assets/events.yaml", EVENTS),
        ("assets/rolling.yaml", ROLLING),
        ("assets/previous.yaml", PREVIOUS),
        ("assets/countries.yaml", COUNTRIES),
        ("assets/regions.yaml", REGIONS),
    ]);
    p.run(&["materialize"]).ok();
    let rows = |sql: &str| p.run(&["sql", "--json", sql]).ok().json();
    assert_eq!(
        rows("SELECT partition_key AS p, days, first_day FROM rolling ORDER BY p"),
        serde_json::json!([
            {"p": "2026-01-01", "days": 1, "first_day": "2026-01-01"},
            {"p": "2026-01-02", "days": 2, "first_day": "2026-01-01"},
            {"p": "2026-01-03", "days": 2, "first_day": "2026-01-02"}
        ])
    );
    assert_eq!(
        rows("SELECT partition_key AS p, day, rows FROM previous ORDER BY p"),
        serde_json::json!([
            {"p": "2026-01-02", "day": "2026-01-01", "rows": 2},
            {"p": "2026-01-03", "day": "2026-01-02", "rows": 2}
        ])
    );
    assert_eq!(
        rows("SELECT partition_key AS p, countries FROM regions ORDER BY p"),
        serde_json::json!([{"p": "amer", "countries": 1}, {"p": "emea", "countries": 2}])
    );
    // A new 2026-01-02 of events makes stale exactly the partitions that read it.
    p.run(&[
        "materialize",
        "events",
        "--partition",
        "2026-01-02",
        "--force",
    ])
    .ok();
    let stale = rows(
        "SELECT asset_key || '[' || partition_key || ']' AS s FROM spine.partitions WHERE state = 'stale' ORDER BY s",
    );
    assert_eq!(
        stale,
        serde_json::json!([
            {"s": "previous[2026-01-03]"},
            {"s": "rolling[2026-01-02]"},
            {"s": "rolling[2026-01-03]"}
        ])
    );
}

#[test]
fn bad_partition_mappings_are_refused() {
    for (yaml, says) in [
        (
            "key: x\nkind: sql\npartitions: {daily: {start: 2026-01-01}}\npartition_mapping: {countries: {offset: 1}}\nquery: SELECT 1 AS n\n",
            "'countries' is not an upstream of this asset",
        ),
        (
            "key: x\nkind: sql\npartitions: {static: [a]}\npartition_mapping: {countries: {offset: 1}}\nquery: SELECT n FROM countries\n",
            "both assets need hourly/daily/weekly/monthly partitions",
        ),
        (
            "key: x\nkind: sql\npartitions: {static: [a]}\npartition_mapping: {countries: {map: {a: [xx]}}}\nquery: SELECT n FROM countries\n",
            "'xx', which is not one of the upstream's partitions",
        ),
        (
            "key: x\nkind: sql\npartitions: {static: [a]}\npartition_mapping: {countries: {nearest: 1}}\nquery: SELECT n FROM countries\n",
            "unknown partition mapping 'nearest'",
        ),
    ] {
        let p = Project::new(&[("assets/countries.yaml", COUNTRIES), ("assets/x.yaml", yaml)]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0212") && r.stderr.contains(says),
            "{yaml}\n{}",
            r.stderr
        );
    }
}

#[test]
fn dynamic_partitions_are_added_at_run_time() {
    let p = Project::new(&[
        (
            "assets/customers.yaml",
            "key: customers\nkind: sql\npartitions: {dynamic: tenants}\nquery: SELECT '{{ partition_key }}' AS tenant, 1 AS n\n",
        ),
        (
            "assets/per_tenant.yaml",
            "key: per_tenant\nkind: sql\npartitions: {dynamic: tenants}\nquery: SELECT SUM(n) AS n, MIN(tenant) AS tenant FROM customers\n",
        ),
    ]);
    let added = p
        .run(&["partitions", "add", "tenants", "acme", "globex", "--json"])
        .ok()
        .json();
    assert_eq!(added["added"], 2);
    let again = p
        .run(&["partitions", "add", "tenants", "acme", "initech"])
        .ok()
        .stdout
        .clone();
    assert!(again.contains("1 added, 1 already there"), "{again}");
    let v = p.run(&["materialize", "--json"]).ok().json();
    let steps = statuses(&v);
    assert_eq!(steps.len(), 6, "3 tenants of two assets: {steps:?}");
    // Identity between assets sharing the set: each tenant's total reads only its own rows.
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT partition_key AS p, tenant, n FROM per_tenant ORDER BY p",
        ])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"p": "acme", "tenant": "acme", "n": 1},
            {"p": "globex", "tenant": "globex", "n": 1},
            {"p": "initech", "tenant": "initech", "n": 1}
        ])
    );
    p.run(&["partitions", "add", "tenants", "umbrella"]).ok();
    let st = p.run(&["status", "--json"]).ok().json();
    assert_eq!(st[0]["partitions"]["missing"], 1, "{st}");
    let b = p.run(&["backfill", "--missing", "--json"]).ok().json();
    assert_eq!(
        (&b["state"], &b["steps"]),
        (&serde_json::json!("succeeded"), &serde_json::json!(2))
    );
    let bad = p.run(&["partitions", "add", "nope", "x"]);
    bad.code(2);
    assert!(bad.stderr.contains("E0419"), "{}", bad.stderr);
    let bad = p.run(&["materialize", "customers", "--partition", "hooli"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("assets partitions add tenants hooli"),
        "{}",
        bad.stderr
    );
}

/// The previous day of the first day does not exist: an `offset: -1` partition there reads the
/// upstream's table with no rows (as Dagster's `allow_nonexistent_upstream_partitions`), in any run
/// order, instead of failing.
#[test]
fn a_mapping_to_no_partition_reads_no_rows() {
    let p = Project::new(&[
        ("assets/events.yaml", EVENTS),
        (
            "assets/previous.yaml",
            &PREVIOUS.replace("start: 2026-01-02", "start: 2026-01-01"),
        ),
    ]);
    let v = p.run(&["materialize", "--json"]).ok().json();
    assert_eq!(v["status"], "succeeded", "{v}");
    let rows = p
        .run(&[
            "sql",
            "--json",
            "SELECT partition_key AS p, rows FROM previous ORDER BY p",
        ])
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            {"p": "2026-01-01", "rows": 0},
            {"p": "2026-01-02", "rows": 2},
            {"p": "2026-01-03", "rows": 2}
        ])
    );
}

/// `logs RUN --step ASSET` on a partitioned asset shows the logs of its partition steps (issue 27).
#[test]
fn logs_of_a_partitioned_asset_cover_its_partition_steps() {
    let p = Project::new(&[("assets/events.yaml", EVENTS)]);
    let v = p.run(&["materialize", "--json"]).ok().json();
    let run = v["run_id"].as_str().unwrap();
    let logs = p
        .run(&["logs", run, "--step", "events"])
        .ok()
        .stdout
        .clone();
    for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
        assert!(logs.contains(&format!("[events[{day}]]")), "{day}:\n{logs}");
    }
    let r = p.run(&["logs", run, "--step", "event"]);
    r.code(2);
    assert!(r.stderr.contains("E0404"), "{}", r.stderr);
    // The table's rows are every partition's (two each), not the latest partition's.
    let parts = v["steps"].as_array().unwrap().len() as i64;
    let st = p.run(&["status", "--json"]).ok().json();
    assert_eq!(st[0]["partitions"]["rows"], 2 * parts, "{st}");
    let text = p.run(&["status"]).ok().stdout.clone();
    assert!(text.contains(&format!(" {} ", 2 * parts)), "{text}");
}
