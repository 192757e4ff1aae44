//! Human approvals of agent steps, end to end against the OpenAI-wire test server: a node whose
//! result needs a decision parks the step once its other cases are done; `assets approvals` lists
//! it; `assets approve` lets the daemon resume it without an `execute`, and the decision (who, when,
//! why) lands in the table; `assets reject` ends the waiting cases saying who rejected them and why.
//! No completed model call is made again.

use crate::agents::{agent, envs, project, prompts, run, KEY};
use crate::common::*;
use crate::openai_support::Server;

/// The agent, with the score needing approval when the tone is bad (t3 only).
fn with_approval() -> String {
    agent("").replace(
        "    set: confidence\n",
        "    set: confidence\n    approval: {when: \"confidence < 0.5\"}\n",
    )
}

/// Materializes `p` until its agent parks; the run id and what waits.
fn parked(p: &Project, s: &Server) -> (String, serde_json::Value) {
    let v = run(p, s, &["materialize", "--json"]).json();
    assert_eq!(v["status"], "waiting", "{v}");
    assert_eq!(status_of(&v, "support/replies"), "waiting", "{v}");
    // t1 and t2 ran to their end; t3 stopped after its score.
    assert_eq!(s.requests(), 8);
    let a = run(p, s, &["approvals", "--json"]).ok().json();
    assert_eq!(a.as_array().unwrap().len(), 1, "{a}");
    assert_eq!(a[0]["step"], "support/replies", "{a}");
    let why = a[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("case t3: node 'score' needs approval (confidence < 0.5)"),
        "{why}"
    );
    (a[0]["run_id"].as_str().unwrap().to_string(), v)
}

#[test]
fn an_approval_parks_the_step_and_the_daemon_resumes_it_once_approved() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("");
    p.write("assets/replies.yaml", &with_approval());
    let (run_id, _) = parked(&p, &s);
    // Only a step that waits for an approval can be approved.
    let r = run(&p, &s, &["approve", &run_id, "support/tickets"]);
    r.code(2);
    assert!(
        r.stderr.contains("does not wait for an approval"),
        "{}",
        r.stderr
    );

    let mut envs = envs(&s);
    envs.push(("SPINE_ACTOR", "ana".to_string()));
    run_in_env(
        p.path(),
        &[
            "approve",
            &run_id,
            "support/replies",
            "--comment",
            "tone is fine",
        ],
        &envs,
    )
    .ok();
    // No `execute`: the daemon picks the signalled run up.
    run(&p, &s, &["daemon", "--once"]).ok();
    // One more call: t3's draft. Nothing else was asked again.
    assert_eq!(s.requests(), 9);
    assert_eq!(prompts(&s), (9, 9));
    let runs = run(&p, &s, &["runs", "--json"]).ok().json();
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    let r = run(
        &p,
        &s,
        &[
            "sql",
            "--json",
            "SELECT case_id, output, approval FROM support.replies ORDER BY case_id",
        ],
    )
    .ok()
    .json();
    assert!(
        r[0]["approval"].is_null() && r[1]["approval"].is_null(),
        "{r}"
    );
    let decision: serde_json::Value =
        serde_json::from_str(r[2]["approval"].as_str().unwrap()).unwrap();
    assert_eq!(decision["decision"], "approved", "{decision}");
    assert_eq!(decision["by"], "ana", "{decision}");
    assert_eq!(decision["comment"], "tone is fine", "{decision}");
    assert!(decision["at"].as_str().is_some(), "{decision}");
    assert!(!r[2]["output"].is_null(), "{r}");
    let a = run(&p, &s, &["approvals", "--json"]).ok().json();
    assert_eq!(a.as_array().unwrap().len(), 0, "{a}");
}

#[test]
fn a_rejected_case_ends_saying_who_rejected_it_and_why() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("");
    p.write("assets/replies.yaml", &with_approval());
    let (run_id, _) = parked(&p, &s);
    let mut envs = envs(&s);
    envs.push(("SPINE_ACTOR", "bo".to_string()));
    run_in_env(
        p.path(),
        &[
            "reject",
            &run_id,
            "support/replies",
            "--comment",
            "too angry to answer by bot",
        ],
        &envs,
    )
    .ok();
    run(&p, &s, &["execute", &run_id]).ok();
    assert_eq!(s.requests(), 8, "a rejected case asks nothing more");
    let r = run(
        &p,
        &s,
        &[
            "sql",
            "--json",
            "SELECT case_id, output, error, path FROM support.replies ORDER BY case_id",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        r[2]["error"], "rejected by bo: too angry to answer by bot",
        "{r}"
    );
    assert!(r[2]["output"].is_null(), "{r}");
    assert_eq!(r[2]["path"], "classify > refunds > score", "{r}");
    assert!(r[0]["error"].is_null(), "{r}");
}
