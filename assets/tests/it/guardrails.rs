//! `[guardrails]`: personal data matching the PII patterns is masked as `[NAME]` wherever text is
//! logged or stored — a command's log lines and its error, the events, check samples — while the
//! asset's own table keeps the data. A bad pattern is refused at spine.toml.

use crate::common::*;

const TOML: &str = "[project]\nname = \"g\"\n[guardrails]\npii = [\"email\", \"card\"]\n[guardrails.patterns]\nemployee = \"EMP-[0-9]{6}\"\n";

#[test]
fn pii_is_masked_in_logs_events_errors_and_check_samples_but_not_in_the_table() {
    let p = Project::new(&[
        ("spine.toml", TOML),
        (
            "assets/customers.yaml",
            "key: raw/customers\nkind: sql\ntags: [pii]\nquery: SELECT * FROM (VALUES (1, 'ana@shop.example', 'ok'), (2, 'bo@shop.example', 'blocked')) AS t(id, email, state)\nchecks:\n  - accepted_values: {column: state, values: [ok]}\n    severity: warn\n",
        ),
        (
            "assets/notify.yaml",
            "key: notify\nkind: command\ndeps: [raw/customers]\ncommand: [sh, -c, 'echo \"{\\\"type\\\":\\\"log\\\",\\\"message\\\":\\\"mailed ana@shop.example by EMP-123456\\\"}\"; echo \"card 4111 1111 1111 1111 declined\" >&2; exit 3']\n",
        ),
    ]);
    let r = p.run(&["materialize", "--json"]);
    r.code(1);
    for secret in [
        "ana@shop.example",
        "bo@shop.example",
        "4111 1111 1111 1111",
        "EMP-123456",
    ] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret} printed"
        );
    }
    let q = |sql: &str| p.run(&["sql", "--json", sql]).ok().json();
    let samples = q("SELECT samples FROM spine.check_results");
    let samples = samples[0]["samples"].as_str().unwrap().to_string();
    assert!(
        samples.contains("[email]") && !samples.contains("@shop"),
        "{samples}"
    );
    let events = q("SELECT message FROM spine.events WHERE step_id = 'notify'").to_string();
    assert!(events.contains("mailed [email] by [employee]"), "{events}");
    assert!(events.contains("card [card] declined"), "{events}");
    assert!(
        !events.contains("@shop") && !events.contains("4111"),
        "{events}"
    );
    // The data itself is the asset's: the table keeps it.
    let rows = q("SELECT email FROM raw.customers ORDER BY id");
    assert_eq!(rows[0]["email"], "ana@shop.example");
    // The run store holds none of it.
    let db = std::fs::read(p.path().join(".spine/state.db")).unwrap();
    for secret in ["ana@shop.example", "4111 1111 1111 1111", "EMP-123456"] {
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in state.db"
        );
    }
}

#[test]
fn a_bad_pii_pattern_is_refused_at_spine_toml() {
    for (guardrails, says) in [
        ("pii = [\"ssn\"]", "no built-in pattern 'ssn'"),
        (
            "[guardrails.patterns]\nbad = \"(\"",
            "[guardrails.patterns] bad",
        ),
    ] {
        let toml = if guardrails.starts_with('[') {
            format!("[project]\nname = \"g\"\n{guardrails}\n")
        } else {
            format!("[project]\nname = \"g\"\n[guardrails]\n{guardrails}\n")
        };
        let p = Project::new(&[("spine.toml", toml.as_str())]);
        let r = p.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0104") && r.stderr.contains(says),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("spine.toml"), "{}", r.stderr);
    }
}
