//! The run store's connection dropped at a known statement under one `assets materialize` on
//! Postgres: a trigger on the test database terminates the connection that records the first
//! skipped step (a real dropped connection, at a known moment; a sequence, which no rollback undoes,
//! makes it happen once). The run goes on: the skip is recorded once the store answers again, and
//! the run ends as its steps say. (`workers_soak` drops connections at random moments.)

use crate::common::*;
use crate::postgres_source::{psql, server, Database};

#[test]
fn a_connection_dropped_while_a_skip_is_recorded_does_not_fail_the_run() {
    let Some(server) = server() else { return };
    let db = Database::new(&server);
    let toml = format!(
        "[project]\nname = \"faults\"\n[state]\nurl = \"{}\"\n",
        db.url
    );
    let p = Project::new(&[
        ("spine.toml", toml.as_str()),
        (
            "assets/bad.yaml",
            "key: bad\nkind: command\ncommand: [sh, -c, 'exit 3']\nschema:\n  - v: int64\n",
        ),
        (
            "assets/child.yaml",
            "key: child\nkind: sql\nquery: SELECT v FROM bad\n",
        ),
        (
            "assets/grandchild.yaml",
            "key: grandchild\nkind: sql\nquery: SELECT v FROM child\n",
        ),
        (
            "assets/ok.yaml",
            "key: ok\nkind: sql\nquery: SELECT 1 AS v\n",
        ),
    ]);
    // The store's tables exist once a command has opened it.
    p.run(&["runs"]).ok();
    psql(
        &db.url,
        "CREATE SEQUENCE fault_once;
         CREATE FUNCTION drop_on_skip() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.status = 'skipped' AND nextval('fault_once') = 1 THEN
             PERFORM pg_terminate_backend(pg_backend_pid());
             PERFORM pg_sleep(5);
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER drop_on_skip BEFORE UPDATE ON steps FOR EACH ROW EXECUTE FUNCTION drop_on_skip();",
    );
    let r = p.run(&["materialize", "--json"]);
    // The run failed because `bad` did: exit 1 with its report, not an error about the store.
    r.code(1);
    let v = r.json();
    assert_eq!(status_of(&v, "bad"), "failed", "{v}");
    assert_eq!(status_of(&v, "child"), "skipped", "{v}");
    assert_eq!(status_of(&v, "grandchild"), "skipped", "{v}");
    assert_eq!(status_of(&v, "ok"), "succeeded", "{v}");
    // The fault fired (the connection was dropped at the first skip), and the store agrees.
    let fired = std::process::Command::new("psql")
        .args([&db.url, "-tAc", "SELECT last_value FROM fault_once"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&fired.stdout)
            .trim()
            .parse::<i64>()
            .unwrap()
            >= 2,
        "the fault did not fire"
    );
    let run_id = v["run_id"].as_str().unwrap();
    let stored = p.run(&["run", run_id, "--json"]).ok().json();
    assert_eq!(stored["run"]["status"], "failed", "{stored}");
    let steps = stored["steps"].as_array().expect("steps");
    for s in steps {
        let want = match s["step_id"].as_str() {
            Some("bad") => "failed",
            Some("ok") => "succeeded",
            _ => "skipped",
        };
        assert_eq!(s["status"], want, "{stored}");
    }
}
