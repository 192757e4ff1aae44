//! The audit log end to end: mutating commands are recorded before they act — who (`SPINE_ACTOR`),
//! what, on what, from where, with their arguments — and read-only ones are not; `assets audit
//! verify` passes on the untouched log and names the first entry changed behind Spine's back.

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
