//! Checks on a source read in place: they run on exactly the observed files; an observation that
//! fails an `error` check is kept unpublished, so the downstream keeps reading the last published
//! observation (its recorded upstream proves it) until `assets publish` releases the new one.

use crate::common::*;

#[test]
fn a_source_observation_that_fails_a_check_is_not_read_downstream_until_published() {
    let p = Project::new(&[
        (
            "assets/rates.yaml",
            "key: raw/rates\nkind: source\npath: ../data/rates/*.csv\nchecks:\n  - not_null: [rate]\n  - accepted_values: {column: currency, values: [EUR, GBP]}\n",
        ),
        (
            "assets/avg.yaml",
            "key: avg_rate\nkind: sql\nquery: SELECT COUNT(*) AS n, AVG(rate) AS rate FROM raw.rates\n",
        ),
        ("data/rates/2026-01.csv", "currency,rate\nEUR,1.0\nGBP,2.0\n"),
    ]);
    p.run(&["materialize"]).ok();
    let avg = || {
        p.run(&["sql", "--json", "SELECT n, rate FROM avg_rate"])
            .ok()
            .json()
    };
    assert_eq!(avg(), serde_json::json!([{"n": 2, "rate": 1.5}]));
    let read = || {
        p.run(&["sql", "--json", "SELECT l.upstream_materialization_id AS up FROM spine.lineage l JOIN spine.materializations m ON m.id = l.materialization_id WHERE m.asset_key = 'avg_rate' ORDER BY m.id DESC LIMIT 1"])
            .ok()
            .json()[0]["up"]
            .clone()
    };
    let first = read();
    // A new file with an unknown currency: the observation is recorded, unpublished; avg_rate skipped.
    p.write("data/rates/2026-02.csv", "currency,rate\nXXX,9.0\n");
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    let v = r.json();
    assert_eq!(status_of(&v, "raw/rates"), "failed");
    assert_eq!(status_of(&v, "avg_rate"), "skipped");
    let err = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "raw/rates")
        .unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("accepted_values") && err.contains("the observation is kept unpublished"),
        "{err}"
    );
    let results = p
        .run(&["sql", "--json", "SELECT c.check_name AS name, c.passed, c.failing_rows FROM spine.check_results c JOIN spine.materializations m ON m.id = c.materialization_id WHERE m.asset_key = 'raw/rates' AND NOT m.published ORDER BY c.check_name"])
        .ok()
        .json();
    assert_eq!(
        results,
        serde_json::json!([
            {"name": "accepted_values_currency", "passed": false, "failing_rows": 1},
            {"name": "not_null_rate", "passed": true, "failing_rows": 0},
        ])
    );
    // Later runs observe it again, fail the same way and still never let it reach the downstream.
    let v = p.run(&["materialize", "avg_rate", "--json"]).code(1).json();
    assert_eq!(status_of(&v, "avg_rate"), "skipped");
    assert_eq!(avg(), serde_json::json!([{"n": 2, "rate": 1.5}]));
    assert_eq!(read(), first);
    let st = p.run(&["status", "raw/rates"]).ok().stdout.clone();
    assert!(
        st.contains("an observation held back by failed checks (accepted_values_currency): assets publish raw/rates --reason"),
        "{st}"
    );
    // `assets checks` runs them alone on the published observation: it passes.
    p.run(&["checks", "raw/rates"]).ok();
    // Published after a look, the new observation is read.
    p.run(&["publish", "raw/rates", "--reason", "XXX is a test currency"])
        .ok();
    p.run(&["materialize"]).ok();
    assert_eq!(avg(), serde_json::json!([{"n": 3, "rate": 4.0}]));
    assert_ne!(read(), first);
}
