//! `kind: agent` end to end against an OpenAI-wire test server on loopback that answers
//! deterministically and counts requests (`openai_support/agent_server.py`): a graph with a
//! conditional edge, a SQL tool over an asset and typed state writes one row per case; a step killed
//! with SIGKILL mid-graph resumes without repeating a completed call (the request count proves it);
//! budgets stop steps (and runs) with a named failure and a `budget_exceeded` event; a rate limit is
//! retried after the time the endpoint asks for; bad definitions are named at their line; the API
//! key is never stored.

use crate::common::*;
use crate::openai_support::Server;
use std::time::{Duration, Instant};

pub(crate) const KEY: &str = "sk-agent-7c0ffee";

pub(crate) const TICKETS: &str = "key: support/tickets
kind: sql
query: >
  SELECT * FROM (VALUES
    ('t1', 'c1', 'I want a refund for my invoice'),
    ('t2', 'c2', 'The app crashes on start'),
    ('t3', 'c1', 'Charged again and I am angry')
  ) AS t(id, customer, body)
";

pub(crate) const REFUNDS: &str = "key: support/refunds
kind: sql
query: SELECT * FROM (VALUES ('c1', 10.0), ('c1', 5.5), ('c3', 1.0)) AS t(customer, amount)
";

/// The agent: classify; billing tickets look up the customer's refunds; score; draft.
pub(crate) fn agent(extra: &str) -> String {
    format!(
        r#"key: support/replies
kind: agent
input: support/tickets
model: {{base_url: "${{env:TEST_OPENAI_URL}}", name: small, api_key_env: TEST_OPENAI_KEY}}
prices: {{prompt_per_1k: 1.0, completion_per_1k: 2.0}}
concurrency: 1
state: {{category: string, refunds: int, confidence: float, reply: string}}
start: classify
nodes:
  classify:
    llm: "CLASSIFY {{{{ body }}}}"
    set: category
    next:
      - {{when: "category == 'billing'", to: refunds}}
      - {{to: score}}
  refunds:
    sql: SELECT count(*) AS n FROM support.refunds WHERE customer = $customer
    set: refunds
    next: score
  score:
    llm: "SCORE {{{{ body }}}}"
    set: confidence
    next: draft
  draft:
    llm: "REPLY {{{{ body }}}} ({{{{ category }}}})"
    set: reply
output: reply
{extra}"#
    )
}

pub(crate) fn project(extra: &str) -> Project {
    Project::new(&[
        ("assets/tickets.yaml", TICKETS),
        ("assets/refunds.yaml", REFUNDS),
        ("assets/replies.yaml", &agent(extra)),
    ])
}

pub(crate) fn envs(s: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("TEST_OPENAI_URL", s.url.clone()),
        ("TEST_OPENAI_KEY", KEY.to_string()),
    ]
}

pub(crate) fn run(p: &Project, s: &Server, args: &[&str]) -> Run {
    run_in_env(p.path(), args, &envs(s))
}

fn rows(p: &Project, s: &Server) -> serde_json::Value {
    run(p, s, &["sql", "--json", "SELECT case_id, category, refunds, confidence, output, nodes, path, prompt_tokens, completion_tokens, cost, trace_id, error FROM support.replies ORDER BY case_id"])
        .ok()
        .json()
}

/// The prompts the server answered, and how many distinct ones.
pub(crate) fn prompts(s: &Server) -> (usize, usize) {
    let v = s.stats();
    let all: Vec<&str> = v["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&str> = all.iter().copied().collect();
    (all.len(), distinct.len())
}

#[test]
fn an_agent_graph_writes_one_row_per_case_along_its_conditional_edges() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("");
    run(&p, &s, &["check"]).ok();
    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(v["status"], "succeeded", "{v}");
    // Three model calls per case.
    assert_eq!(s.requests(), 9);
    let r = rows(&p, &s);
    assert_eq!(r[0]["case_id"], "t1", "{r}");
    assert_eq!(r[0]["category"], "billing", "{r}");
    assert_eq!(r[0]["refunds"], 2, "the SQL tool counted c1's refunds: {r}");
    assert_eq!(r[0]["confidence"], 0.9, "{r}");
    assert_eq!(
        r[0]["output"], "Re: I want a refund for my invoice (billing)",
        "{r}"
    );
    assert_eq!(r[0]["path"], "classify > refunds > score > draft", "{r}");
    assert_eq!(r[0]["nodes"], 4, "{r}");
    assert_eq!(r[1]["category"], "technical", "{r}");
    assert_eq!(r[1]["path"], "classify > score > draft", "{r}");
    assert!(r[1]["refunds"].is_null(), "{r}");
    assert_eq!(r[2]["confidence"], 0.3, "{r}");
    for row in r.as_array().unwrap() {
        assert!(row["error"].is_null(), "{row}");
        assert!(row["prompt_tokens"].as_i64().unwrap() > 0, "{row}");
        assert!(row["cost"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["trace_id"].as_str().unwrap().len(), 32, "{row}");
    }
    // Fresh: nothing is asked again.
    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(status_of(&v, "support/replies"), "up_to_date", "{v}");
    assert_eq!(s.requests(), 9);
    // New upstream data is new work: every case runs again (a new checkpoint key).
    p.write(
        "assets/refunds.yaml",
        &REFUNDS.replace("('c3', 1.0)", "('c1', 1.0)"),
    );
    run(&p, &s, &["materialize", "--json"]).ok();
    assert_eq!(s.requests(), 18);
    assert_eq!(rows(&p, &s)[0]["refunds"], 3);

    // The key never reached the store, the logs or the tables.
    assert_in_no_file(p.path(), KEY);
}

#[test]
fn a_step_killed_mid_graph_resumes_without_repeating_a_completed_call() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("");
    // t1 takes calls 1-3, t2 call 4 (classify) and 5 (score): the fifth never answers.
    s.control(serde_json::json!({"hang_at": 5}));
    let mut child = assets_in(p.path(), &["materialize"], &envs(&s))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.requests() < 5 {
        assert!(Instant::now() < deadline, "the fifth call never came");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL, while the fifth call is in flight
    child.wait().unwrap();
    assert!(!p
        .path()
        .join("warehouse/support/replies/_delta_log")
        .exists());

    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(status_of(&v, "support/replies"), "succeeded", "{v}");
    // Nine calls in all, and only the one in flight at the kill was made twice.
    let (all, distinct) = prompts(&s);
    assert_eq!((all, distinct), (10, 9), "{}", s.stats());
    let r = rows(&p, &s);
    assert_eq!(r.as_array().unwrap().len(), 3, "{r}");
    assert!(
        r.as_array()
            .unwrap()
            .iter()
            .all(|c| c["error"].is_null() && !c["output"].is_null()),
        "{r}"
    );
    let m = run(
        &p,
        &s,
        &[
            "sql",
            "--json",
            "SELECT metadata FROM spine.materializations WHERE asset_key = 'support/replies'",
        ],
    )
    .ok()
    .json();
    let meta: serde_json::Value = serde_json::from_str(m[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(
        meta["resumed_nodes"], 5,
        "t1's four nodes and t2's classify: {meta}"
    );
    assert_eq!(
        meta["model_calls"], 9,
        "resumed calls count as spent: {meta}"
    );
}

#[test]
fn a_budget_stops_the_step_by_name_and_raising_it_resumes_without_paying_twice() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    // The first case's classify (8 + 1 tokens) fits; its score call goes over.
    let p = project("budget: {tokens: 12}\n");
    let r = run(&p, &s, &["materialize", "--json"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let v = r.json();
    assert_eq!(status_of(&v, "support/replies"), "failed", "{v}");
    let step = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["key"] == "support/replies")
        .unwrap();
    let err = step["error"].as_str().unwrap();
    assert!(err.contains("budget exceeded: tokens"), "{err}");
    assert_eq!(step["attempts"], 1, "a budget is not retried: {step}");
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
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let payload: serde_json::Value =
        serde_json::from_str(events[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(payload["budget"], "tokens", "{payload}");
    assert_eq!(payload["limit"], 12.0, "{payload}");
    assert_eq!(s.requests(), 2);

    // Raised, the budget lets the same work go on from where it stopped: nothing is paid twice.
    p.write(
        "assets/replies.yaml",
        &agent("budget: {tokens: 100000, cost: 100}\n"),
    );
    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(status_of(&v, "support/replies"), "succeeded", "{v}");
    assert_eq!(s.requests(), 9);
    assert_eq!(prompts(&s), (9, 9));
}

#[test]
fn a_budget_set_to_stop_the_run_cancels_the_steps_still_running() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("budget: {cost: 0.001, on_exceed: stop_run}\n");
    p.write(
        "assets/slow.yaml",
        "key: slow\nkind: command\ncommand: [python3, -c, \"import time; time.sleep(30)\"]\n",
    );
    let started = Instant::now();
    let r = run(&p, &s, &["materialize", "--json", "-c", "2"]);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the slow step was not stopped"
    );
    let v = r.json();
    assert_eq!(
        v["status"], "failed",
        "the run failed by the budget, not cancelled: {v}"
    );
    assert_eq!(status_of(&v, "support/replies"), "failed", "{v}");
    assert_eq!(status_of(&v, "slow"), "cancelled", "{v}");
}

#[test]
fn a_rate_limit_is_retried_after_the_time_the_endpoint_asks_for() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    let p = project("retries: 2\nretry_delay: 10ms\n");
    s.control(serde_json::json!({"rate_limit_once": 2}));
    let started = Instant::now();
    let v = run(&p, &s, &["materialize", "--json"]).ok().json();
    assert_eq!(status_of(&v, "support/replies"), "succeeded", "{v}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the retry waited {:?}, not the 2 s the endpoint asked for",
        started.elapsed()
    );
    assert_eq!(s.stats()["rate_limited"], 1);
    assert_eq!(prompts(&s), (9, 9));
}

#[test]
fn bad_agent_definitions_are_named_at_their_file() {
    let s = Server::start("examples/agents/model_server.py", KEY);
    for (from, to, says) in [
        (
            "next: score\n",
            "next: scoer\n",
            "nodes.refunds: next: no node 'scoer'",
        ),
        (
            "set: reply\n",
            "set: replied\n",
            "nodes.draft: set: 'replied' is not a state field",
        ),
        (
            "category == 'billing'",
            "category = billing",
            "is not `field op value`",
        ),
        (
            "    set: confidence\n",
            "    set: confidence\n    sql: SELECT 1\n",
            "exactly one of llm, sql, http, command, rust",
        ),
        (
            "output: reply\n",
            "output: answer\n",
            "output: 'answer' is not a state field",
        ),
        (
            "start: classify\n",
            "start: clasify\n",
            "start: no node 'clasify'",
        ),
        (
            "    next: draft\n",
            "    next: draft\n  fn:\n    rust: nope\n",
            "no agent function 'nope' is registered",
        ),
    ] {
        let text = agent("");
        assert!(text.contains(from), "{from}");
        let p = Project::new(&[
            ("assets/tickets.yaml", TICKETS),
            ("assets/refunds.yaml", REFUNDS),
            ("assets/replies.yaml", &text.replacen(from, to, 1)),
        ]);
        let r = run(&p, &s, &["check"]);
        r.code(2);
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
        assert!(r.stderr.contains("replies.yaml"), "{}", r.stderr);
    }
    assert_eq!(s.requests(), 0);
}

/// Opt-in: an agent against a real small model (SmolLM2 behind llama.cpp's OpenAI-compatible server;
/// `eval "$(scripts/llm.sh)"` starts one and sets SPINE_TEST_LLM_URL).
#[test]
fn a_real_small_model_runs_an_agent_graph() {
    let Ok(url) = std::env::var("SPINE_TEST_LLM_URL") else {
        eprintln!("skipped: no model (eval \"$(scripts/llm.sh)\" starts one)");
        return;
    };
    let agent = r#"key: support/replies
kind: agent
input: support/tickets
model: {base_url: "${env:TEST_LLM_URL}", name: smollm2, max_tokens: 24}
concurrency: 1
state: {category: string, reply: string}
start: classify
nodes:
  classify:
    llm: "Is this support ticket about billing or a technical problem? Answer with one word. Ticket: {{ body }}"
    set: category
    next: draft
  draft:
    llm: "Write one short sentence replying to this support ticket: {{ body }}"
    set: reply
output: reply
"#;
    let p = Project::new(&[
        ("assets/tickets.yaml", TICKETS),
        ("assets/replies.yaml", agent),
    ]);
    let envs = [("TEST_LLM_URL", url)];
    run_in_env(p.path(), &["materialize"], &envs).ok();
    let rows = run_in_env(
        p.path(),
        &["sql", "--json", "SELECT case_id, category, output, nodes, prompt_tokens, completion_tokens FROM support.replies ORDER BY case_id"],
        &envs,
    )
    .ok()
    .json();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
    for r in rows.as_array().unwrap() {
        assert_eq!(r["nodes"], 2, "{r}");
        assert!(!r["output"].as_str().unwrap_or_default().is_empty(), "{r}");
        assert!(r["prompt_tokens"].as_i64().unwrap() > 0, "{r}");
        assert!(r["completion_tokens"].as_i64().unwrap() > 0, "{r}");
    }
}
