//! A source over a real PostgreSQL (started by `scripts/services.sh`, which `.ci/run` calls; its URL in
//! SPINE_TEST_POSTGRES_URL): the query's rows are read by key with Postgres types mapped to Arrow; an
//! unchanged table observes as up to date; a changed one makes exactly its dependents stale; a
//! missing URL variable and a query naming a missing column fail the observation, naming them.

use crate::common::*;
use std::process::Command;

/// The server's URL, or None outside CI when no server was started (then the test says so).
pub fn server() -> Option<String> {
    match std::env::var("SPINE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("SPINE_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL with scripts/services.sh")
        }
        _ => {
            eprintln!("skipped: no PostgreSQL (run `eval \"$(scripts/services.sh)\"` first)");
            None
        }
    }
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh database on the server, dropped when dropped.
pub struct Database {
    server: String,
    name: String,
    pub url: String,
}

impl Database {
    pub fn new(server: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("spine_test_{}_{nanos}", std::process::id());
        psql(server, &format!("CREATE DATABASE {name}"));
        let (base, _) = server.rsplit_once('/').expect("a URL with a database");
        Database {
            server: server.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[test]
fn a_postgres_query_is_a_source_and_its_changes_make_exactly_its_dependents_stale() {
    let Some(server) = server() else { return };
    let db = Database::new(&server);
    psql(
        &db.url,
        "CREATE TABLE accounts (id int8 PRIMARY KEY, owner text, balance numeric(10,2), opened date,
           updated timestamptz, active bool, tags jsonb);
         INSERT INTO accounts VALUES
           (1, 'ann', 10.50, '2026-01-02', '2026-01-02 10:00:00+00', true, '[\"a\"]'),
           (2, 'ann', 4.25, '2026-02-03', '2026-02-03 11:00:00+00', true, NULL),
           (3, 'bob', 100.00, '2026-03-04', '2026-03-04 12:00:00+00', false, '{}');",
    );
    let p = Project::new(&[
        (
            "assets/accounts.yaml",
            "key: raw/accounts\nkind: source\npostgres:\n  url_env: SHOP_PG_URL\n  query: SELECT id, owner, balance, opened, updated, active, tags FROM accounts\n",
        ),
        (
            "assets/totals.yaml",
            "key: marts/totals\nkind: sql\nquery: SELECT owner, SUM(balance) AS total, COUNT(*) AS n FROM raw.accounts WHERE active GROUP BY owner\n",
        ),
        (
            "assets/other.yaml",
            "key: marts/other\nkind: sql\nquery: SELECT 1 AS one\n",
        ),
    ]);
    let env = [("SHOP_PG_URL", db.url.clone())];
    let run = |args: &[&str]| run_in_env(p.path(), args, &env);
    // The query's description is its schema: `check` plans the SQL below it before anything ran;
    // without the database it says what is missing.
    let v = run(&["check", "--json"]).ok().json();
    assert_eq!(
        (v["sql_planned"].clone(), v["unplanned"].clone()),
        (2.into(), serde_json::json!([]))
    );
    let v = run_in(p.path(), &["check", "--json"]).ok().json();
    assert_eq!(v["unplanned"][0]["key"], "marts/totals", "{v}");
    assert!(
        v["unplanned"][0]["why"]
            .as_str()
            .unwrap()
            .contains("SHOP_PG_URL is not set"),
        "{v}"
    );
    run(&["materialize"]).ok();
    let totals = |run: &dyn Fn(&[&str]) -> Run| {
        run(&[
            "sql",
            "--json",
            "SELECT owner, total, n FROM marts.totals ORDER BY owner",
        ])
        .ok()
        .json()
    };
    assert_eq!(
        totals(&run),
        serde_json::json!([{"owner": "ann", "total": 14.75, "n": 2}])
    );
    let types = run(&["sql", "--json", "SELECT arrow_typeof(id) AS id, arrow_typeof(balance) AS balance, arrow_typeof(opened) AS opened, arrow_typeof(updated) AS updated, arrow_typeof(active) AS active, arrow_typeof(tags) AS tags_type, tags FROM raw.accounts WHERE id = 1"])
        .ok()
        .json();
    assert_eq!(
        types,
        serde_json::json!([{"id": "Int64", "balance": "Float64", "opened": "Date32",
            "updated": "Timestamp(µs, \"UTC\")", "active": "Boolean", "tags_type": "Utf8", "tags": "[\"a\"]"}])
    );
    // Unchanged: the observation is up to date, nothing recomputes.
    let v = run(&["materialize", "--json"]).ok().json();
    let mut steps = step_statuses(&v);
    steps.sort();
    assert_eq!(
        steps,
        [
            ("marts/other".to_string(), "up_to_date".to_string()),
            ("marts/totals".to_string(), "up_to_date".to_string()),
            ("raw/accounts".to_string(), "up_to_date".to_string()),
        ]
    );
    // A changed row: a new observation; only the dependent goes stale.
    psql(&db.url, "UPDATE accounts SET active = true WHERE id = 3");
    let v = run(&["observe", "--json"]).ok().json();
    assert_eq!(
        step_statuses(&v),
        [("raw/accounts".to_string(), "succeeded".to_string())]
    );
    assert_eq!(
        states(p.path(), &env, &["marts/totals", "marts/other"]),
        ["stale", "fresh"]
    );
    run(&["materialize"]).ok();
    assert_eq!(
        totals(&run),
        serde_json::json!([{"owner": "ann", "total": 14.75, "n": 2}, {"owner": "bob", "total": 100.0, "n": 1}])
    );
    // Bad input: the URL variable is not set; the query names a column the table lacks.
    let r = run_in(p.path(), &["observe", "--json"]);
    r.code(1);
    assert!(r.stdout.contains("SHOP_PG_URL is not set"), "{}", r.stdout);
    p.write(
        "assets/accounts.yaml",
        "key: raw/accounts\nkind: source\npostgres:\n  url_env: SHOP_PG_URL\n  query: SELECT id, owner, balanse FROM accounts\n",
    );
    let r = run(&["observe", "--json"]);
    r.code(1);
    assert!(
        r.stdout.contains("the query does not plan") && r.stdout.contains("balanse"),
        "{}",
        r.stdout
    );
    let r = run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0240") && r.stderr.contains("balanse"),
        "{}",
        r.stderr
    );
    // What was stored is intact.
    assert_eq!(
        totals(&run),
        serde_json::json!([{"owner": "ann", "total": 14.75, "n": 2}, {"owner": "bob", "total": 100.0, "n": 1}])
    );
}

#[test]
fn bad_postgres_source_definitions_are_refused() {
    for (yaml, says) in [
        (
            "key: s\nkind: source\n",
            "needs `path:` (files), `postgres:` (a query) or `delta:`",
        ),
        (
            "key: s\nkind: source\npath: x.csv\npostgres: {query: SELECT 1}\n",
            "not several",
        ),
        (
            "key: s\nkind: source\npostgres: {query: SELECT 1, url_env: \"bad name\"}\n",
            "not an environment variable name",
        ),
        (
            "key: s\nkind: source\nformat: csv\npostgres: {query: SELECT 1}\n",
            "are for files",
        ),
    ] {
        let q = Project::new(&[("assets/s.yaml", yaml)]);
        let r = q.run(&["check"]);
        r.code(2);
        assert!(
            r.stderr.contains("E0240") && r.stderr.contains(says),
            "{yaml}: {}",
            r.stderr
        );
    }
}
