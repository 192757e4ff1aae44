//! A run's budget (`[budgets]` in spine.toml, or the run's `budget_tokens` / `budget_cost` tags):
//! what all of a run's agent steps pay together, added up in the run store as each fresh model call
//! completes. Two agents in one run stop together once it is spent, by name, with a
//! `budget_exceeded` event and the run failed; raising it lets the next run resume the same work
//! without paying twice. A budget tag that is not a number is refused.

use crate::agents::{agent, prompts, run, KEY, REFUNDS, TICKETS};
use crate::common::*;
use crate::openai_support::Server;

#[test]
fn a_run_budget_stops_every_agent_step_of_the_run_and_raising_it_resumes() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let second = agent("").replace("key: support/replies", "key: support/replies2");
    let p = Project::new(&[
        ("assets/tickets.yaml", TICKETS),
        ("assets/refunds.yaml", REFUNDS),
        ("assets/replies.yaml", &agent("")),
        ("assets/replies2.yaml", &second),
    ]);
    // Unbounded, the two agents make 18 calls of about 9 tokens each.
    let r = run(
        &p,
        &s,
        &[
            "materialize",
            "--json",
            "-c",
            "2",
            "--tag",
            "budget_tokens=30",
        ],
    );
    assert_ne!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    assert_eq!(v["status"], "failed", "{v}");
    let stopped: Vec<&serde_json::Value> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| {
            st["error"]
                .as_str()
                .is_some_and(|e| e.contains("budget exceeded: run_tokens"))
        })
        .collect();
    assert_eq!(
        stopped.len(),
        2,
        "each agent step stopped by the run's budget: {v}"
    );
    let paid = s.requests();
    // Each step finishes the call it had started when the other spent the budget.
    assert!(
        (4..=6).contains(&paid),
        "{paid} calls for a 30-token budget"
    );
    let events = run(
        &p,
        &s,
        &[
            "sql",
            "--json",
            "SELECT data FROM spine.events WHERE kind = 'budget_exceeded'",
        ],
    )
    .ok()
    .json();
    let payload: serde_json::Value =
        serde_json::from_str(events[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(payload["budget"], "run_tokens", "{payload}");
    assert_eq!(payload["limit"], 30.0, "{payload}");
    assert_eq!(payload["stops_run"], false, "{payload}");

    // A budget in spine.toml, raised: the next run resumes the same work, paying for the rest only.
    let toml = std::fs::read_to_string(p.path().join("spine.toml")).unwrap();
    p.write(
        "spine.toml",
        &format!("{toml}\n[budgets]\nrun_tokens = 100000\nrun_cost = 1000\n"),
    );
    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(s.requests(), 18, "nothing paid twice");
    assert_eq!(prompts(&s).0, 18);
}

#[test]
fn a_run_budget_tag_that_is_not_a_number_is_refused() {
    let p = Project::new(&[("assets/tickets.yaml", TICKETS)]);
    for tag in ["budget_tokens=lots", "budget_cost=-1", "budget_tokens=1.5"] {
        let r = p.run(&["materialize", "--tag", tag]);
        r.code(2);
        assert!(r.stderr.contains("E0113"), "{tag}: {}", r.stderr);
    }
    let n = p
        .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM spine.runs"])
        .ok()
        .json();
    assert_eq!(n[0]["n"], 0, "no run recorded");
}
