//! One case through the graph, node by node, each stored as a checkpoint as it completes (what it
//! changed, what it spent, where the case goes next). A case that has checkpoints — from a killed
//! process, a failed attempt, an earlier run over the same inputs and code — is folded from them and
//! continues at the next position: a completed model call is never made again. Budgets are checked
//! before and after each paid node against what the step's cases spent together, resumed work
//! included.

use super::config::{AgentConfig, OnExceed};
use super::graph::{follow, holds};
use super::nodes::{self, Tools, Usage};
use serde_json::{Map, Value};
use spine_engine::kinds::checkpoints::{CheckpointKey, RunSpend};
use spine_engine::kinds::{StepContext, StepError};
use spine_schemas::events::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A case's outcome: its row of the agent's table.
#[derive(Debug, Clone, Default)]
pub struct CaseResult {
    /// The case's id.
    pub case_id: String,
    /// Its final state.
    pub state: Map<String, Value>,
    /// What its nodes spent (resumed ones included).
    pub usage: Usage,
    /// The nodes it ran, in order.
    pub path: Vec<String>,
    /// Why it ended without finishing (a refused request, a failed program, `max_steps`).
    pub error: Option<String>,
    /// Its trace id: the same for the same work, across attempts and runs.
    pub trace_id: String,
    /// Nodes taken from checkpoints rather than run.
    pub resumed: usize,
    /// Why the case waits for a human decision (it stopped after the node that needs it).
    pub pending: Option<String>,
    /// The decision that let it go on: `{decision, by, comment, at}`.
    pub approval: Option<Value>,
}

/// What the step's cases spent together, against its budgets.
pub struct Spend {
    used: Mutex<Usage>,
    /// What the run's steps paid together, as last read from the store.
    run: Mutex<RunSpend>,
    exceeded: AtomicBool,
    deadline: Option<Instant>,
}

impl Spend {
    /// Nothing spent yet; the wall-time budget starts now.
    pub fn new(cfg: &AgentConfig) -> Spend {
        Spend {
            used: Mutex::new(Usage::default()),
            run: Mutex::new(RunSpend::default()),
            exceeded: AtomicBool::new(false),
            deadline: cfg.budget.wall_time.map(|t| Instant::now() + t),
        }
    }

    /// What was spent.
    pub fn used(&self) -> Usage {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, u: &Usage) {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).add(u);
    }

    /// Adds a fresh model call's usage to the run's spend in the store (zero: reads it), when the run
    /// has a budget.
    async fn pay(&self, ctx: &StepContext, u: &Usage) -> Result<(), StepError> {
        if !ctx.run_budget.is_set() {
            return Ok(());
        }
        let tokens = u.prompt_tokens + u.completion_tokens;
        let spent = ctx
            .checkpoints
            .spend(&ctx.run_id, &ctx.step, tokens, u.cost)
            .await
            .map_err(store_failed)?;
        *self.run.lock().unwrap_or_else(|p| p.into_inner()) = spent;
        Ok(())
    }

    /// Fails the step when a budget is spent (`strict`: at it counts, before a call; after one, only
    /// over it does). The first case to find it records the `budget_exceeded` event.
    async fn check(
        &self,
        ctx: &StepContext,
        cfg: &AgentConfig,
        strict: bool,
    ) -> Result<(), StepError> {
        let u = self.used();
        let tokens = (u.prompt_tokens + u.completion_tokens) as f64;
        let over = |used: f64, limit: f64| if strict { used >= limit } else { used > limit };
        let b = &cfg.budget;
        let run = *self.run.lock().unwrap_or_else(|p| p.into_inner());
        let rb = ctx.run_budget;
        let hit = if let Some(t) = b.tokens.filter(|t| over(tokens, *t as f64)) {
            Some(("tokens", tokens, t as f64))
        } else if let Some(c) = b.cost.filter(|c| over(u.cost, *c)) {
            Some(("cost", u.cost, c))
        } else if let (Some(d), Some(t)) = (self.deadline, b.wall_time) {
            (Instant::now() >= d).then_some(("wall_time", t.as_secs_f64(), t.as_secs_f64()))
        } else if let Some(t) = rb.tokens.filter(|t| over(run.tokens as f64, *t as f64)) {
            Some(("run_tokens", run.tokens as f64, t as f64))
        } else {
            rb.cost
                .filter(|c| over(run.cost, *c))
                .map(|c| ("run_cost", run.cost, c))
        };
        let Some((budget, used, limit)) = hit else {
            return Ok(());
        };
        // A run's budget spent stops every agent step of the run at its next call (each reads the
        // run's spend first), after the call under way: cancelling one mid-call would lose a paid
        // answer. `on_exceed: stop_run` cancels the rest of the run at once.
        let of_run = budget.starts_with("run_");
        let stops_run = b.on_exceed == OnExceed::StopRun;
        let message = match of_run {
            false => format!(
                "budget exceeded: {budget} {} of {} (the step's cases together); raise `budget.{budget}` or shrink the work",
                round(used),
                round(limit)
            ),
            true => format!(
                "budget exceeded: {budget} {} of {} (the run's steps together); raise `[budgets] {budget}` in spine.toml or the run's `budget_{}` tag",
                round(used),
                round(limit),
                budget.trim_start_matches("run_")
            ),
        };
        if !self.exceeded.swap(true, Ordering::SeqCst) {
            let event = Event::BudgetExceeded {
                budget: budget.into(),
                used,
                limit,
                stops_run,
            };
            ctx.events.emit(event, &message).await;
        }
        let err = StepError::permanent(message);
        Err(if stops_run { err.stopping_run() } else { err })
    }
}

fn round(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

/// The trace id of the work under `key` (32 hex digits, W3C-shaped).
pub fn trace_id(key: &CheckpointKey) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            key.step, key.case_id, key.code_version, key.inputs
        )
        .as_bytes(),
    );
    format!("{h:032x}")
}

fn store_failed(e: String) -> StepError {
    StepError::retryable(format!("the run store's checkpoints: {e}"))
}

/// The human decision a signal carries, if it carries one: `{"decision": "approved"|"rejected", …}`.
pub fn decision(signal: Option<&Value>) -> Option<&Value> {
    signal.filter(|s| matches!(s["decision"].as_str(), Some("approved" | "rejected")))
}

/// Runs (or resumes) one case. `decision` is the human decision the step was resumed with, for a
/// case that waits for one.
pub async fn run(
    tools: &Tools<'_>,
    cfg: &AgentConfig,
    spend: &Spend,
    key: CheckpointKey,
    case: &Map<String, Value>,
    decision: Option<&Value>,
) -> Result<CaseResult, StepError> {
    let ctx = tools.ctx;
    let mut out = CaseResult {
        case_id: key.case_id.clone(),
        trace_id: trace_id(&key),
        state: cfg.state.keys().map(|k| (k.clone(), Value::Null)).collect(),
        ..CaseResult::default()
    };
    let mut next = Some(cfg.start.clone());
    let stored = ctx.checkpoints.load(&key).await.map_err(store_failed)?;
    // Where the case waits for a decision: (the node, why).
    let mut waits: Option<(String, String)> = None;
    for cp in &stored {
        next = cp.delta["next"].as_str().map(str::to_string);
        if !cp.delta["decision"].is_null() {
            out.approval = Some(cp.delta["decision"].clone());
            out.error = cp.delta["error"].as_str().map(str::to_string);
            waits = None;
            continue;
        }
        if let Some(set) = cp.delta["set"].as_object() {
            out.state.extend(set.clone());
        }
        let u = Usage::from_json(&cp.delta["usage"]);
        out.usage.add(&u);
        spend.add(&u);
        out.path.push(cp.node.clone());
        out.error = cp.delta["error"].as_str().map(str::to_string);
        waits = cp.delta["approval_needed"]
            .as_str()
            .map(|why| (cp.node.clone(), why.to_string()));
    }
    out.resumed = out.path.len();
    let mut position = stored.len() as i64;
    if let Some((node, why)) = waits {
        let Some(d) = decision else {
            out.pending = Some(why);
            return Ok(out);
        };
        // The decision is a checkpoint too: a later resume follows it without the signal.
        let approved = d["decision"] == "approved";
        let on_reject = cfg
            .nodes
            .get(&node)
            .and_then(|n| n.approval.as_ref())
            .and_then(|a| a.on_reject.clone());
        if !approved {
            next = on_reject.clone();
            if on_reject.is_none() {
                out.error = Some(format!(
                    "rejected by {}: {}",
                    d["by"].as_str().unwrap_or("someone"),
                    d["comment"].as_str().unwrap_or("no comment")
                ));
            }
        }
        let delta = serde_json::json!({"decision": d, "next": next, "error": out.error});
        ctx.checkpoints
            .put(&key, position, &node, &delta)
            .await
            .map_err(store_failed)?;
        position += 1;
        out.approval = Some(d.clone());
    }
    while let Some(name) = next.take() {
        if out.path.len() >= cfg.max_steps as usize {
            out.error = Some(format!(
                "the case reached max_steps ({}) before its end, at node '{name}'",
                cfg.max_steps
            ));
            break;
        }
        let Some(node) = cfg.nodes.get(&name) else {
            return Err(StepError::permanent(format!(
                "no node '{name}' (a checkpoint names one the graph lost)"
            )));
        };
        let paid = matches!(node.action, super::config::Action::Llm { .. });
        if paid {
            // What other steps of the run paid meanwhile counts too.
            spend.pay(ctx, &Usage::default()).await?;
        }
        spend.check(ctx, cfg, paid).await?;
        let mut fields = case.clone();
        fields.extend(out.state.clone());
        let run = nodes::run(tools, &node.action, &fields);
        let done = match spend.deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), run).await {
                Ok(done) => done?,
                // Past the wall-time budget: the check fails the step by name.
                Err(_) => {
                    spend.check(ctx, cfg, true).await?;
                    return Err(StepError::retryable("the wall-time budget ran out"));
                }
            },
            None => run.await?,
        };
        let (changes, error) = changes(cfg, &name, node.set.as_deref(), done.result);
        let mut state = out.state.clone();
        state.extend(changes.clone());
        let to = match error {
            Some(_) => None,
            None => follow(&node.next, &state, case),
        };
        let needs = node
            .approval
            .as_ref()
            .filter(|a| error.is_none() && a.when.as_ref().is_none_or(|c| holds(c, &state, case)));
        let why = needs.map(|a| match &a.when {
            Some(c) => format!(
                "case {}: node '{name}' needs approval ({} {} {})",
                out.case_id, c.field, c.op, c.value
            ),
            None => format!("case {}: node '{name}' needs approval", out.case_id),
        });
        let delta = serde_json::json!({
            "set": changes,
            "usage": done.usage.to_json(),
            "next": to,
            "error": error,
            "approval_needed": why,
        });
        ctx.checkpoints
            .put(&key, position, &name, &delta)
            .await
            .map_err(store_failed)?;
        position += 1;
        out.state = state;
        out.usage.add(&done.usage);
        spend.add(&done.usage);
        out.path.push(name);
        out.error = error;
        if paid {
            spend.pay(ctx, &done.usage).await?;
            spend.check(ctx, cfg, false).await?;
        }
        if why.is_some() {
            out.pending = why;
            break;
        }
        next = to;
    }
    Ok(out)
}

/// What a node's result changes in the state, or the case's error.
fn changes(
    cfg: &AgentConfig,
    name: &str,
    set: Option<&str>,
    result: Result<Value, String>,
) -> (Map<String, Value>, Option<String>) {
    let mut changes = Map::new();
    let mut error = None;
    match (result, set) {
        (Ok(v), Some(set)) => {
            if let Some(ty) = cfg.state.get(set) {
                changes.insert(set.to_string(), nodes::coerce(v, *ty));
            }
        }
        (Ok(Value::Object(o)), None) => {
            for (k, v) in o {
                match cfg.state.get(&k) {
                    Some(ty) => {
                        changes.insert(k, nodes::coerce(v, *ty));
                    }
                    None => {
                        error = Some(format!(
                            "node '{name}' returned '{k}', which is not a state field"
                        ));
                    }
                }
            }
        }
        (Ok(Value::Null), None) => {}
        (Ok(other), None) => {
            error = Some(format!(
                "node '{name}' has no `set` and returned {}, not an object of state fields",
                other.to_string().chars().take(100).collect::<String>()
            ));
        }
        (Err(e), _) => error = Some(e),
    }
    (changes, error)
}
