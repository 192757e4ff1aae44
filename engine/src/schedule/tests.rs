use super::*;

fn def(yaml: &str) -> Result<ScheduleDef, String> {
    ScheduleDef::parse(serde_yaml::from_str(yaml).map_err(|e| e.to_string())?)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn stamps(v: Vec<DateTime<Utc>>) -> Vec<String> {
    v.into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

#[test]
fn a_daily_cron_follows_its_timezone_across_daylight_saving() {
    let s = def("name: nightly\ncron: \"0 2 * * *\"\ntimezone: Europe/Berlin\n").unwrap();
    // 02:00 in Berlin is 01:00 UTC in winter, 00:00 UTC in summer; on 2026-03-29 the clocks jump from
    // 02:00 to 03:00, so that day has no 02:00 and no tick.
    let ticks = s.ticks_between(at("2026-03-26T12:00:00Z"), at("2026-03-31T12:00:00Z"), 100);
    assert_eq!(
        stamps(ticks),
        vec![
            "2026-03-27T01:00Z",
            "2026-03-28T01:00Z",
            "2026-03-30T00:00Z",
            "2026-03-31T00:00Z"
        ]
    );
}

#[test]
fn ticks_are_exclusive_of_the_start_inclusive_of_the_end_and_bounded() {
    let s = def("name: hourly\ncron: \"0 * * * *\"\n").unwrap();
    let t = s.ticks_between(at("2026-01-01T00:00:00Z"), at("2026-01-01T03:00:00Z"), 100);
    assert_eq!(
        stamps(t),
        vec![
            "2026-01-01T01:00Z",
            "2026-01-01T02:00Z",
            "2026-01-01T03:00Z"
        ]
    );
    assert_eq!(
        s.ticks_between(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), 10)
            .len(),
        10
    );
    assert_eq!(
        s.next_after(at("2026-01-01T00:30:00Z")),
        Some(at("2026-01-01T01:00:00Z"))
    );
    // Six fields: seconds first.
    let s = def("name: s\ncron: \"30 0 * * * *\"\n").unwrap();
    assert_eq!(
        s.next_after(at("2026-01-01T00:00:00Z")),
        Some(at("2026-01-01T00:00:30Z"))
    );
}

#[test]
fn bad_schedules_say_what_to_write() {
    for (yaml, says) in [
        ("name: a\ncron: \"0 2 * *\"\n", "has 4 fields"),
        ("name: a\ncron: \"0 25 * * *\"\n", "is not valid"),
        ("name: a\ncron: \"every day\"\n", "has 2 fields"),
        (
            "name: a\ncron: \"0 2 * * *\"\ntimezone: Mars/Olympus\n",
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            "name: a\ncron: \"0 2 * * *\"\npartition: yesterday\n",
            "partition 'yesterday'",
        ),
        (
            "name: a\ncron: \"0 2 * * *\"\ncatch_up: maybe\n",
            "catch_up 'maybe'",
        ),
        ("name: a b\ncron: \"0 2 * * *\"\n", "must be letters"),
    ] {
        let e = def(yaml).expect_err(yaml);
        assert!(e.contains(says), "{yaml}: {e}");
    }
    assert!(def("name: a\ncron: \"0 2 * * *\"\nevery: day\n")
        .expect_err("unknown field")
        .contains("unknown field `every`"));
}
