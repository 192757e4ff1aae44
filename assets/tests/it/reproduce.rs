//! `assets reproduce`: a past materialization recomputed with its upstreams pinned at the Delta
//! versions it read gives the same data version although the upstream has changed since; a
//! non-deterministic asset is reported different with a per-column summary (exit 1); a code change
//! is named; a partition is reproduced alone; bad requests are E0309 (exit 2).

use crate::common::*;

fn project() -> Project {
    Project::new(&[
        (
            "assets/orders.yaml",
            "key: raw/orders\nkind: sql\nquery: SELECT value AS id, value * ${var:price} AS amount, DATE '2026-01-01' + CAST(value % 2 AS INT) AS day FROM generate_series(1, 100)\n",
        ),
        (
            "assets/total.yaml",
            "key: marts/total\nkind: sql\nquery: SELECT SUM(amount) AS amount, COUNT(*) AS n FROM raw.orders\n",
        ),
        (
            "assets/noisy.yaml",
            "key: marts/noisy\nkind: sql\nquery: SELECT id, amount, random() AS r FROM raw.orders\n",
        ),
        (
            "assets/daily.yaml",
            "key: marts/daily\nkind: sql\npartitions: {daily: {start: 2026-01-01, end: 2026-01-03}}\nquery: SELECT COUNT(*) AS n, SUM(amount) AS amount FROM raw.orders WHERE day = DATE '{{ partition_key }}'\n",
        ),
        (
            "assets/inc.yaml",
            "key: marts/inc\nkind: sql\nincremental: {strategy: append, watermark: id}\nquery: SELECT id FROM raw.orders WHERE {{ watermark }} IS NULL OR id > {{ watermark }}\n",
        ),
    ])
}

fn run(p: &Project, price: &str, args: &[&str]) -> Run {
    run_in_env(p.path(), args, &[("SPINE_VAR_PRICE", price.to_string())])
}

#[test]
fn a_past_materialization_is_reproduced_with_its_upstreams_pinned() {
    let p = project();
    let first = run(&p, "2", &["materialize", "--json"]).ok().json();
    assert_eq!(first["status"], "succeeded", "{first}");
    let r1 = first["run_id"].as_str().unwrap().to_string();
    let total = |price| {
        run(
            &p,
            price,
            &["sql", "--json", "SELECT amount FROM marts.total"],
        )
        .ok()
        .json()[0]["amount"]
            .clone()
    };
    assert_eq!(total("2"), 10100);
    run(&p, "3", &["materialize"]).ok();
    assert_eq!(
        total("3"),
        15150,
        "the upstream changed since the first run"
    );

    // The first run's total, recomputed now, reads raw/orders at version 0: identical.
    let r = run(
        &p,
        "3",
        &["reproduce", "marts/total", "--run", &r1[..20], "--json"],
    );
    r.ok();
    let r = r.json();
    assert_eq!(r["identical"], true, "{r}");
    assert_eq!(r["upstream"][0]["delta_version"], 0, "{r}");
    assert_eq!(r["data_version"], r["recorded_data_version"]);
    assert!(r["diff"].is_null());
    // The latest one too, by version, in words.
    let text = run(&p, "3", &["reproduce", "marts/total", "--version", "1"]);
    text.ok();
    assert!(text.stdout.contains("identical: 1 rows"), "{}", text.stdout);
    assert!(text.stdout.contains("raw/orders@1"), "{}", text.stdout);

    // One partition, alone.
    let d = run(
        &p,
        "3",
        &[
            "reproduce",
            "marts/daily",
            "--partition",
            "2026-01-02",
            "--run",
            &r1,
            "--json",
        ],
    );
    d.ok();
    assert_eq!(d.json()["identical"], true, "{}", d.stdout);

    // random() is not reproducible: every value of r differs, the other columns do not.
    let n = run(&p, "3", &["reproduce", "marts/noisy", "--json"]);
    n.code(1);
    let n = n.json();
    assert_eq!(n["identical"], false);
    assert_eq!(
        (&n["rows"], &n["recorded_rows"]),
        (&100.into(), &100.into())
    );
    let diff = &n["diff"];
    assert_eq!(
        diff["values_differing"],
        serde_json::json!([["r", 100]]),
        "{n}"
    );
    assert_eq!(
        (&diff["rows_only_recorded"], &diff["rows_only_reproduced"]),
        (&100.into(), &100.into())
    );
    assert!(std::path::Path::new(
        n["scratch_table"]
            .as_str()
            .unwrap()
            .trim_start_matches("file://")
    )
    .exists());

    // New code: the difference is explained by it.
    p.write(
        "assets/total.yaml",
        "key: marts/total\nkind: sql\nquery: SELECT SUM(amount) + 1 AS amount, COUNT(*) AS n FROM raw.orders\n",
    );
    let c = run(&p, "3", &["reproduce", "marts/total", "--run", &r1]);
    c.code(1);
    assert!(
        c.stdout.contains("DIFFERENT") && c.stdout.contains("the code changed since"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains("column amount: 1 recorded value(s) not reproduced"),
        "{}",
        c.stdout
    );
}

#[test]
fn what_cannot_be_reproduced_is_refused() {
    let p = project();
    run(&p, "2", &["materialize"]).ok();
    // A run that did not materialize the asset (it was fresh).
    let later = run(&p, "2", &["materialize", "marts/total", "--json"])
        .ok()
        .json();
    let later = later["run_id"].as_str().unwrap().to_string();
    let unknown = run(&p, "2", &["reproduce", "marts/total", "--run", "ffffffff"]);
    unknown.code(2);
    assert!(unknown.stderr.contains("ffffffff"), "{}", unknown.stderr);
    let by_run = format!("no materialization by run {later}");
    for (args, says) in [
        (
            vec!["reproduce", "marts/total", "--version", "7"],
            "no materialization that wrote version 7",
        ),
        (
            vec!["reproduce", "marts/total", "--run", later.as_str()],
            by_run.as_str(),
        ),
        (vec!["reproduce", "marts/inc"], "incremental"),
        (
            vec!["reproduce", "marts/daily"],
            "no published materialization",
        ),
    ] {
        let r = run(&p, "2", &args);
        r.code(2);
        assert!(
            r.stderr.contains("E0309") && r.stderr.contains(says),
            "{args:?}: {}",
            r.stderr
        );
    }
}
