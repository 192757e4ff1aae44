use super::*;

fn parse(yaml: &str) -> Result<Vec<CheckDef>, String> {
    let v: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    parse_checks(&v)
}

#[test]
fn checks_parse_with_default_names_and_severities() {
    let c = parse(
        "- not_null: [id, amount]\n- unique: id\n- accepted_values: {column: status, values: [paid, 3]}\n- row_count: {min: 1}\n- expression: amount >= 0\n  severity: warn\n- sql: SELECT * FROM this WHERE x\n  name: custom\n",
    )
    .unwrap();
    let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "not_null_id_amount",
            "unique_id",
            "accepted_values_status",
            "row_count",
            "expression_5",
            "custom"
        ]
    );
    assert_eq!(c[4].severity, CheckSeverity::Warn);
    assert_eq!(
        c[2].kind,
        CheckKind::AcceptedValues {
            column: "status".into(),
            values: vec!["'paid'".into(), "3".into()]
        }
    );
}

#[test]
fn bad_checks_say_what_to_write() {
    for (yaml, says) in [
        ("not_null: [id]", "is a list"),
        ("- nul: [id]", "unknown check 'nul'"),
        ("- not_null: []", "names no column"),
        ("- not_null: [a]\n  unique: b", "exactly one check kind"),
        ("- row_count: {}", "needs `min`, `max` or `max_change_pct`"),
        ("- row_count: {min: 5, max: 2}", "above max"),
        ("- freshness: {column: ts, max_age: soon}", "max_age"),
        (
            "- accepted_values: {column: s, vals: [a]}",
            "has no field `vals`",
        ),
        (
            "- unique: a\n- unique: a",
            "two checks are named 'unique_a'",
        ),
        (
            "- expression: x > 0\n  severity: fatal",
            "`severity` is `error` or `warn`",
        ),
    ] {
        let err = parse(yaml).unwrap_err();
        assert!(err.contains(says), "{yaml}: {err}");
    }
}

#[test]
fn failing_row_queries() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let q = |k| failing_rows_sql(&k, now).unwrap();
    assert_eq!(
        q(CheckKind::NotNull(vec!["a".into(), "b".into()])),
        "SELECT * FROM this WHERE \"a\" IS NULL OR \"b\" IS NULL"
    );
    assert_eq!(
        q(CheckKind::Freshness { column: "ts".into(), max_age: Duration::from_secs(3600) }),
        "SELECT MAX(\"ts\") AS newest FROM this HAVING MAX(\"ts\") IS NULL OR CAST(MAX(\"ts\") AS TIMESTAMP) < CAST('2026-03-02 11:00:00.000' AS TIMESTAMP)"
    );
    assert!(failing_rows_sql(
        &CheckKind::RowCount {
            min: Some(1),
            max: None,
            max_change_pct: None
        },
        now
    )
    .is_none());
}
