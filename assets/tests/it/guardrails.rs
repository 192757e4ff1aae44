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

/// A Postgres source's URL comes from the environment (`url_env`): neither it nor its password is
/// printed or stored when the connection fails, and a command's `env:` value from `${var:…}` set
/// through the environment is masked in its error.
#[test]
fn a_postgres_url_and_a_command_env_value_never_leave_the_process() {
    let password = "pw-s3cret-9731";
    let token = "tok-s3cret-2468";
    let p = Project::new(&[
        ("spine.toml", "[project]\nname = \"g\"\n[vars]\ntoken = \"x\"\n"),
        (
            "assets/accounts.yaml",
            "key: raw/accounts\nkind: source\npostgres:\n  url_env: TEST_PG_URL\n  query: SELECT 1 AS id\n",
        ),
        (
            "assets/call.yaml",
            "key: call\nkind: command\ncommand: [sh, -c, 'echo \"calling with $TOKEN\" >&2; exit 4']\nenv:\n  TOKEN: \"${var:token}\"\n",
        ),
    ]);
    let envs = [
        (
            "TEST_PG_URL",
            format!("postgresql://spine:{password}@127.0.0.1:1/db"),
        ),
        ("SPINE_VAR_TOKEN", token.to_string()),
    ];
    let mut seen = String::new();
    for args in [
        vec!["observe"],
        vec!["materialize", "call", "--json"],
        vec!["runs", "--json"],
    ] {
        let r = run_in_env(p.path(), &args, &envs);
        seen.push_str(&r.stdout);
        seen.push_str(&r.stderr);
    }
    let logs = run_in_env(
        p.path(),
        &["sql", "--json", "SELECT message FROM spine.events"],
        &envs,
    );
    seen.push_str(&logs.stdout);
    assert!(seen.contains("exit") || seen.contains("status"), "{seen}");
    for secret in [password, token] {
        assert!(!seen.contains(secret), "{secret} printed: {seen}");
        assert_in_no_file(p.path(), secret);
    }
    assert!(seen.contains("calling with ***"), "{seen}");
}
