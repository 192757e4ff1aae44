use super::*;

fn def(yaml: &str) -> Result<PartitionsDef, String> {
    PartitionsDef::parse(&serde_yaml::from_str::<serde_json::Value>(yaml).unwrap())
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn keys(d: &PartitionsDef, now: &str) -> Vec<String> {
    d.keys(at(now)).into_iter().map(|k| k.0).collect()
}

fn pk(s: &str) -> PartitionKey {
    PartitionKey(s.into())
}

#[test]
fn daily_windows_exist_once_they_have_ended() {
    let d = def("daily: {start: 2026-01-01}").unwrap();
    assert_eq!(d.column, "partition_key");
    assert_eq!(keys(&d, "2026-01-01T12:00:00Z"), Vec::<String>::new());
    assert_eq!(
        keys(&d, "2026-01-04T00:00:00Z"),
        ["2026-01-01", "2026-01-02", "2026-01-03"]
    );
    let d = def("daily: {start: 2026-01-01, end: 2026-01-03}\ncolumn: day").unwrap();
    assert_eq!(d.column, "day");
    assert_eq!(
        keys(&d, "2030-01-01T00:00:00Z"),
        ["2026-01-01", "2026-01-02"]
    );
}

#[test]
fn weekly_monthly_and_static_keys() {
    let w = def("weekly: {start: 2026-01-05}").unwrap();
    assert_eq!(
        keys(&w, "2026-01-20T00:00:00Z"),
        ["2026-01-05", "2026-01-12"]
    );
    let m = def("monthly: {start: 2026-01-01, format: '%Y-%m-%d'}").unwrap();
    assert_eq!(
        keys(&m, "2026-04-01T00:00:00Z"),
        ["2026-01-01", "2026-02-01", "2026-03-01"]
    );
    let s = def("static: [eu, us, apac]").unwrap();
    assert_eq!(keys(&s, "2000-01-01T00:00:00Z"), ["eu", "us", "apac"]);
    assert!(s.window(&pk("eu")).is_none());
}

#[test]
fn hourly_windows_follow_the_wall_clock_across_daylight_saving() {
    // Europe/Berlin skips 02:00–03:00 on 2026-03-29.
    let d = def("hourly: {start: '2026-03-29 00:00', timezone: Europe/Berlin}").unwrap();
    assert_eq!(
        keys(&d, "2026-03-29T03:00:00Z"),
        [
            "2026-03-29-00:00",
            "2026-03-29-01:00",
            "2026-03-29-03:00",
            "2026-03-29-04:00"
        ]
    );
    let w = d.window(&pk("2026-03-29-01:00")).unwrap();
    assert_eq!(w.start.to_rfc3339(), "2026-03-29T01:00:00+01:00");
    assert_eq!(w.end.to_rfc3339(), "2026-03-29T03:00:00+02:00");
    assert!(d
        .check(&pk("2026-03-29-02:00"), at("2026-03-30T00:00:00Z"))
        .unwrap_err()
        .contains("clocks skip it"));
}

#[test]
fn windows_carry_their_timezone_offset() {
    let d = def("daily: {start: 2026-01-01, timezone: America/New_York}").unwrap();
    let w = d.window(&pk("2026-01-01")).unwrap();
    assert_eq!(w.start.to_rfc3339(), "2026-01-01T00:00:00-05:00");
    assert_eq!(w.end.to_rfc3339(), "2026-01-02T00:00:00-05:00");
    // The first day ends at 05:00 UTC on the 2nd.
    assert!(keys(&d, "2026-01-02T04:59:00Z").is_empty());
    assert_eq!(keys(&d, "2026-01-02T05:00:00Z"), ["2026-01-01"]);
}

#[test]
fn keys_are_checked_against_the_definition() {
    let d = def("daily: {start: 2026-01-01, end: 2026-02-01}").unwrap();
    let now = at("2026-01-10T00:00:00Z");
    assert!(d.check(&pk("2026-01-05"), now).is_ok());
    for (bad, why) in [
        ("2026/01/05", "not a daily partition key"),
        ("2025-12-31", "not the start of a daily window"),
        ("2026-01-10", "has not ended yet"),
        ("2026-02-01", "at or after the definition's end"),
    ] {
        let e = d.check(&pk(bad), now).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let s = def("static: [eu, us]").unwrap();
    assert!(s.check(&pk("apac"), now).unwrap_err().contains("eu, us"));
}

#[test]
fn ranges_are_inclusive_and_ordered() {
    let d = def("daily: {start: 2026-01-01}").unwrap();
    let now = at("2026-02-01T00:00:00Z");
    let r = d.range(&pk("2026-01-03"), &pk("2026-01-05"), now).unwrap();
    assert_eq!(r, [pk("2026-01-03"), pk("2026-01-04"), pk("2026-01-05")]);
    assert!(d
        .range(&pk("2026-01-05"), &pk("2026-01-03"), now)
        .unwrap_err()
        .contains("comes after"));
}

#[test]
fn bad_definitions_say_what_to_write() {
    for (yaml, why) in [
        (
            "daily: {start: 2026-01-01, timezone: Mars/Olympus}",
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            "daily: {start: yesterday}",
            "start 'yesterday' is not a date",
        ),
        (
            "daily: {start: 2026-01-02, end: 2026-01-01}",
            "is not after start",
        ),
        (
            "daily: {start: 2026-01-01, format: '%Y-%m'}",
            "does not identify a daily window",
        ),
        ("daily: {start: 2026-01-01}\nstatic: [a]", "exactly one of"),
        ("column: day", "name the partitions"),
        (
            "daily: {start: 2026-01-01}\ncolumn: 'my day'",
            "not a plain column name",
        ),
        ("static: []", "lists no partitions"),
        ("static: [a, a]", "listed twice"),
        ("static: ['a b']", "contains ' '"),
        ("daily: {begin: 2026-01-01}", "unknown field `begin`"),
        ("yearly: {start: 2026-01-01}", "unknown field `yearly`"),
    ] {
        let e = def(yaml).unwrap_err();
        assert!(e.contains(why), "{yaml}: {e}");
    }
}

#[test]
fn a_weekly_window_overlaps_its_days() {
    let daily = def("daily: {start: 2026-01-01, timezone: Europe/Berlin}").unwrap();
    let weekly = def("weekly: {start: 2026-01-05, timezone: Europe/Berlin}").unwrap();
    let w = weekly.window(&pk("2026-01-12")).unwrap();
    let days: Vec<String> = daily.overlapping(&w).into_iter().map(|k| k.0).collect();
    assert_eq!(
        days,
        [
            "2026-01-12",
            "2026-01-13",
            "2026-01-14",
            "2026-01-15",
            "2026-01-16",
            "2026-01-17",
            "2026-01-18"
        ]
    );
    // A week before the days start overlaps none; a month overlaps its days.
    let early = def("weekly: {start: 2025-12-01}").unwrap();
    assert!(daily
        .overlapping(&early.window(&pk("2025-12-01")).unwrap())
        .is_empty());
    let monthly = def("monthly: {start: 2026-01-01, timezone: Europe/Berlin}").unwrap();
    assert_eq!(
        daily
            .overlapping(&monthly.window(&pk("2026-02-01")).unwrap())
            .len(),
        28
    );
}

#[test]
fn multi_dimensional_keys_are_the_product_in_dimension_name_order() {
    let d = def("{multi: {region: {static: [eu, us]}, date: {daily: {start: 2026-01-01, end: 2026-01-03}}}}").unwrap();
    assert_eq!(d.columns(), ["date", "region"]);
    assert_eq!(
        keys(&d, "2026-02-01T00:00:00Z"),
        [
            "2026-01-01|eu",
            "2026-01-01|us",
            "2026-01-02|eu",
            "2026-01-02|us"
        ]
    );
    let now = at("2026-02-01T00:00:00Z");
    assert_eq!(
        d.values(&pk("2026-01-02|us")),
        [
            ("date".to_string(), "2026-01-02".to_string()),
            ("region".to_string(), "us".to_string())
        ]
    );
    assert_eq!(
        d.window(&pk("2026-01-02|us")),
        d.window(&pk("2026-01-02|eu"))
    );
    assert!(d.window(&pk("2026-01-02|us")).is_some());
    assert_eq!(
        d.dimension(&pk("2026-01-02|us"), "region").as_deref(),
        Some("us")
    );
    assert_eq!(
        d.covering(&[pk("us")], now).unwrap(),
        [pk("2026-01-01|us"), pk("2026-01-02|us")]
    );
    assert_eq!(
        d.covering_range(&pk("2026-01-02"), &pk("2026-01-02"), now)
            .unwrap(),
        [pk("2026-01-02|eu"), pk("2026-01-02|us")]
    );
    assert!(d
        .check(&pk("2026-01-03|eu"), now)
        .unwrap_err()
        .contains("dimension 'date'"));
    assert!(d.check(&pk("2026-01-01"), now).is_err());
}
