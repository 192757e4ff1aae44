//! The audit log end to end: mutating commands are recorded before they act — who (`SPINE_ACTOR`),
//! what, on what, from where, with their arguments — and read-only ones are not; `assets audit
//! verify` passes on the untouched log and names the first entry changed behind Spine's back;
//! `[roles]` refuse what an actor may not do, and the attempt is recorded.

use crate::common::*;

#[test]
fn mutating_commands_are_recorded_and_tampering_is_named() {
    let p = diamond();
    let ana = [("SPINE_ACTOR", "ana".to_string())];
    run_in_env(p.path(), &["materialize", "--tag", "team=growth"], &ana).ok();
    p.run(&["status"]).ok();
    p.run(&["list"]).ok();
    p.run(&["materialize", "--dry-run"]).ok();
    p.run(&["optimize", "raw/a"]).ok();
    let queued = p.run(&["materialize", "--queue", "--json"]).ok().json();
    let run_id = queued["run_id"].as_str().unwrap().to_string();
    p.run(&["cancel", &run_id]).ok();
    let log = p.run(&["audit", "--json"]).ok().json();
    let log = log.as_array().unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["materialize", "optimize", "materialize", "cancel"],
        "{log:?}"
    );
    assert_eq!(log[0]["actor"], "ana");
    assert_eq!(log[0]["origin"], "cli");
    assert!(!log[0]["host"].as_str().unwrap().is_empty());
    assert!(
        log[0]["details"].as_str().unwrap().contains("team=growth"),
        "the arguments: {}",
        log[0]["details"]
    );
    assert_eq!(log[1]["target"], "raw/a");
    assert_eq!(log[3]["target"], run_id);
    assert_ne!(log[3]["actor"], "ana", "SPINE_ACTOR unset: the OS user");
    let v = p.run(&["audit", "verify", "--json"]).ok().json();
    assert_eq!(v, serde_json::json!({"ok": true, "entries": 4}));

    // Someone edits the second entry in the state database.
    let db = p.path().join(".spine/state.db");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE audit_log SET target = 'stg/b' WHERE id = 2\"); c.commit()",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = p.run(&["audit", "verify"]);
    r.code(1);
    assert!(r.stderr.contains("entry 2"), "{}", r.stderr);
    let v = p.run(&["audit", "verify", "--json"]).code(1).json();
    assert_eq!(v["first_bad"], 2, "{v}");
}

/// `[roles]`: a viewer may read but not run, an operator may run but not vacuum or optimize, an
/// admin may; a refused action does nothing, exits 2 naming the role needed, and is in the audit log.
#[test]
fn roles_refuse_what_the_actor_may_not_do_and_the_attempt_is_recorded() {
    let p = diamond();
    let toml = std::fs::read_to_string(p.path().join("spine.toml")).unwrap();
    p.write(
        "spine.toml",
        &format!("{toml}\n[roles]\nadmin = [\"ana\"]\noperator = [\"bo\"]\n"),
    );
    let as_ =
        |who: &str, args: &[&str]| run_in_env(p.path(), args, &[("SPINE_ACTOR", who.to_string())]);
    let r = as_("cy", &["materialize"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0115")
            && r.stderr.contains("needs the operator role")
            && r.stderr.contains("cy is a viewer"),
        "{}",
        r.stderr
    );
    let runs = as_(
        "cy",
        &["sql", "--json", "SELECT COUNT(*) AS n FROM spine.runs"],
    );
    assert_eq!(runs.ok().json()[0]["n"], 0, "nothing ran");
    as_("cy", &["status"]).ok();
    as_("bo", &["materialize"]).ok();
    let r = as_("bo", &["optimize", "raw/a"]);
    r.code(2);
    assert!(r.stderr.contains("needs the admin role"), "{}", r.stderr);
    as_("ana", &["optimize", "raw/a"]).ok();
    let log = as_("cy", &["audit", "--json"]).ok().json();
    let seen: Vec<(String, String, bool)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["details"].as_str().unwrap().contains("denied"),
            )
        })
        .collect();
    let want = [
        ("cy", "materialize", true),
        ("bo", "materialize", false),
        ("bo", "optimize", true),
        ("ana", "optimize", false),
    ];
    let want: Vec<(String, String, bool)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    assert_eq!(seen, want);
    as_("cy", &["audit", "verify"]).ok();
}
