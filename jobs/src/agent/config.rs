//! The `agent` kind's definition, parsed and validated by the kind:
//!
//! ```yaml
//! key: support/replies
//! kind: agent
//! input: support/tickets        # one case per row of this upstream asset
//! case_id: id                   # its id column (default `id`)
//! model:                        # the default model of `llm` nodes (any OpenAI-compatible API)
//!   base_url: ${env:OPENAI_BASE_URL}
//!   name: gpt-4o-mini
//!   api_key_env: OPENAI_API_KEY  # the key's variable: read at call time, never stored
//! budget: {tokens: 200000, cost: 2.5, wall_time: 10m, on_exceed: fail_step}
//! concurrency: 4                # cases at once
//! max_steps: 25                 # nodes per case (a loop's bound)
//! state: {category: string, confidence: float, reply: string}
//! start: classify
//! nodes:
//!   classify:
//!     llm: "Billing or technical? {{ body }}"
//!     set: category
//!     next:
//!       - {when: "category == 'billing'", to: refund_check}
//!       - {to: draft}
//!   refund_check:
//!     sql: SELECT count(*) AS n FROM support.refunds WHERE customer = $customer
//!     set: prior_refunds
//!     next: draft
//!   draft: {llm: "Reply to: {{ body }}", set: reply}
//! output: reply
//! ```
//!
//! A node does one thing — `llm` (a prompt template), `sql` (a query over assets, case and state
//! fields as `$name` parameters), `http` (a request), `command` (a program: the case and state as
//! JSON on stdin), or `rust` (a function registered in code) — and writes its result to the state
//! field `set` names, or, without `set`, merges the JSON object it returned. `next` is a node, `end`
//! (the default), or branches tried in order (`when` compares a field with a literal). Prices come
//! from `prices:` or `[prices."MODEL"]` in `spine.toml`. The code version covers what decides the
//! output — the graph, prompts, queries, model names, base URLs as written and prices — but no key,
//! and neither `budget` nor `concurrency`.

use super::graph::{condition, Condition, Next};
use crate::openai::ChatModel;
use spine_engine::error::DefinitionError;
use spine_engine::kinds::KindDefinition;
use spine_engine::AssetKey;
use spine_schemas::definitions::PriceSection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The error code of a bad agent definition.
pub const CODE: &str = "E0280";

/// The columns every agent table has, in order, around the state's.
pub const HEAD: [&str; 2] = ["case_id", "output"];
/// The columns after the state's.
pub const TAIL: [&str; 9] = [
    "nodes",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_ms",
    "trace_id",
    "error",
    "path",
    "approval",
];

/// A state field's type: how a node's text result is read into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text as it is (trimmed).
    String,
    /// The first integer in the text.
    Int,
    /// The first number in the text.
    Float,
    /// yes/true/1 or no/false/0.
    Bool,
    /// JSON (text that is not JSON is kept as a string).
    Json,
}

/// What exceeding a budget stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    /// The step fails (permanently); the run's other steps go on.
    #[default]
    FailStep,
    /// The step fails and the run stops: steps not started are cancelled.
    StopRun,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetFields {
    tokens: Option<i64>,
    cost: Option<f64>,
    wall_time: Option<String>,
    #[serde(default)]
    on_exceed: OnExceed,
}

/// A step's budgets: what its cases may spend together, resumed work included (what a crashed
/// attempt paid for was spent).
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// Prompt + completion tokens.
    pub tokens: Option<i64>,
    /// Cost at the model's prices.
    pub cost: Option<f64>,
    /// Wall time of one attempt.
    pub wall_time: Option<Duration>,
    /// What exceeding one stops.
    pub on_exceed: OnExceed,
}

/// An HTTP tool.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTool {
    /// The URL, a template (`{{ field }}`, `${env:NAME}`).
    pub url: String,
    /// GET (the default) or POST.
    #[serde(default = "get")]
    pub method: String,
    /// The body of a POST, a template.
    #[serde(default)]
    pub body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum NextFields {
    To(String),
    Branches(Vec<BranchFields>),
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BranchFields {
    #[serde(default)]
    when: Option<String>,
    to: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum ApprovalFields {
    Always(String),
    When { when: String },
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFields {
    #[serde(default)]
    llm: Option<String>,
    #[serde(default)]
    model: Option<ChatModel>,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    http: Option<HttpTool>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    rust: Option<String>,
    #[serde(default)]
    set: Option<String>,
    #[serde(default)]
    next: Option<NextFields>,
    #[serde(default)]
    approval: Option<ApprovalFields>,
    #[serde(default)]
    on_reject: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFields {
    input: String,
    #[serde(default = "default_case_id")]
    case_id: String,
    model: ChatModel,
    #[serde(default)]
    prices: Option<PriceSection>,
    #[serde(default)]
    budget: BudgetFields,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default = "default_max_steps")]
    max_steps: u32,
    #[serde(default)]
    state: BTreeMap<String, FieldType>,
    start: String,
    nodes: BTreeMap<String, NodeFields>,
    output: String,
}

fn default_case_id() -> String {
    "id".into()
}
fn default_concurrency() -> usize {
    4
}
fn default_max_steps() -> u32 {
    25
}

/// What a node does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Ask a model (the agent's, or the node's own) the rendered prompt.
    Llm {
        /// The prompt template.
        prompt: String,
        /// The model.
        model: ChatModel,
        /// Its prices.
        prices: PriceSection,
    },
    /// A query over assets; the first row is the result (one column: its value; more: an object).
    Sql {
        /// The query, table references rewritten.
        rewritten: String,
    },
    /// An HTTP request; the body is the result (JSON when it parses).
    Http(HttpTool),
    /// A program: the case and state as one JSON object on stdin; its stdout is the result.
    Command(Vec<String>),
    /// A function registered with [`super::AgentKind::function`].
    Rust(String),
}

/// A human approval a node's result needs before the case goes on.
#[derive(Debug, Clone)]
pub struct Approval {
    /// Only when this holds after the node (none: always).
    pub when: Option<Condition>,
    /// Where a rejected case goes (none: it ends with its `error` saying who rejected it and why).
    pub on_reject: Option<String>,
}

/// One node.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it does.
    pub action: Action,
    /// The state field its result goes to (none: a JSON object merged).
    pub set: Option<String>,
    /// Where it goes next.
    pub next: Next,
    /// The approval its result needs, if any.
    pub approval: Option<Approval>,
}

/// A validated agent definition.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The asset whose rows are the cases.
    pub input: AssetKey,
    /// Its id column.
    pub case_id: String,
    /// Budgets.
    pub budget: Budget,
    /// Cases at once.
    pub concurrency: usize,
    /// Nodes per case at most.
    pub max_steps: u32,
    /// Declared state fields.
    pub state: BTreeMap<String, FieldType>,
    /// The first node.
    pub start: String,
    /// The nodes.
    pub nodes: BTreeMap<String, Node>,
    /// The state field that is the case's output.
    pub output: String,
    /// The YAML file's folder (commands run there).
    pub dir: PathBuf,
}

fn target(name: &str) -> Option<String> {
    (name != "end").then(|| name.to_string())
}

/// Parses an `agent` definition; the code version covers all of it (see the module docs).
pub fn parse(
    def: &KindDefinition<'_>,
) -> Result<(AgentConfig, Vec<AssetKey>, String), DefinitionError> {
    let f: AgentFields = def.parse()?;
    let bad = |m: String| def.error(CODE, m);
    let input = AssetKey::parse(&f.input)
        .map_err(|e| bad(format!("input: '{}' is not an asset key: {e}", f.input)))?;
    if f.concurrency == 0 {
        return Err(bad("concurrency: at least 1".into()));
    }
    if f.max_steps == 0 {
        return Err(bad("max_steps: at least 1".into()));
    }
    for name in f.state.keys() {
        if HEAD.contains(&name.as_str()) || TAIL.contains(&name.as_str()) {
            return Err(bad(format!(
                "state: '{name}' is one of the agent table's own columns"
            ))
            .hint("rename the field"));
        }
    }
    if !f.state.contains_key(&f.output) {
        return Err(bad(format!("output: '{}' is not a state field", f.output))
            .hint("declare it under `state:` and `set` it in a node"));
    }
    if !f.nodes.contains_key(&f.start) {
        return Err(bad(format!("start: no node '{}'", f.start)));
    }
    let wall_time = match &f.budget.wall_time {
        Some(t) => Some(
            spine_engine::duration::parse_duration(t)
                .map_err(|m| bad(format!("budget.wall_time: {m}")))?,
        ),
        None => None,
    };
    let price = |m: &ChatModel, own: Option<PriceSection>| {
        own.or(f.prices)
            .or_else(|| def.price(&m.name))
            .unwrap_or_default()
    };
    let mut upstreams = vec![input.clone()];
    let mut nodes = BTreeMap::new();
    for (name, n) in &f.nodes {
        if name == "end" {
            return Err(bad(
                "nodes: 'end' is where a case ends; name the node otherwise".into(),
            ));
        }
        let at = |m: String| bad(format!("nodes.{name}: {m}"));
        let mut actions = Vec::new();
        if let Some(p) = &n.llm {
            let model = n.model.clone().unwrap_or_else(|| f.model.clone());
            let prices = price(&model, None);
            actions.push(Action::Llm {
                prompt: p.clone(),
                model,
                prices,
            });
        }
        if let Some(q) = &n.sql {
            let (rewritten, tables) = def.query(&format!("nodes.{name}.sql"), &def.render(q)?)?;
            upstreams.extend(tables);
            actions.push(Action::Sql { rewritten });
        }
        if let Some(h) = &n.http {
            if !["GET", "POST"].contains(&h.method.to_ascii_uppercase().as_str()) {
                return Err(at(format!("http.method: '{}' (GET or POST)", h.method)));
            }
            actions.push(Action::Http(h.clone()));
        }
        if let Some(c) = &n.command {
            if c.is_empty() {
                return Err(at("command: an empty command".into()));
            }
            let argv = c.iter().map(|a| def.render(a)).collect::<Result<_, _>>()?;
            actions.push(Action::Command(argv));
        }
        if let Some(r) = &n.rust {
            actions.push(Action::Rust(r.clone()));
        }
        if n.model.is_some() && n.llm.is_none() {
            return Err(at("`model` is for `llm` nodes".into()));
        }
        if actions.len() != 1 {
            return Err(at(format!(
                "a node does exactly one of llm, sql, http, command, rust ({} given)",
                actions.len()
            )));
        }
        if let Some(s) = &n.set {
            if !f.state.contains_key(s) {
                return Err(at(format!("set: '{s}' is not a state field"))
                    .hint("declare it under `state:`"));
            }
        }
        let known = |to: &str| -> Result<Option<String>, DefinitionError> {
            if to != "end" && !f.nodes.contains_key(to) {
                return Err(at(format!("next: no node '{to}'")));
            }
            Ok(target(to))
        };
        let next = match &n.next {
            None => Next::To(None),
            Some(NextFields::To(to)) => Next::To(known(to)?),
            Some(NextFields::Branches(bs)) => {
                let mut out = Vec::new();
                for b in bs {
                    let c = match &b.when {
                        Some(w) => Some(condition(w).map_err(|m| at(format!("next: {m}")))?),
                        None => None,
                    };
                    out.push((c, known(&b.to)?));
                }
                Next::Branches(out)
            }
        };
        let approval = match &n.approval {
            None => {
                if n.on_reject.is_some() {
                    return Err(at("`on_reject` goes with `approval`".into()));
                }
                None
            }
            Some(a) => Some(Approval {
                when: match a {
                    ApprovalFields::Always(w) if w == "always" => None,
                    ApprovalFields::Always(w) => {
                        return Err(at(format!(
                            "approval: '{w}' (`always`, or `{{when: CONDITION}}`)"
                        )))
                    }
                    ApprovalFields::When { when } => {
                        Some(condition(when).map_err(|m| at(format!("approval: {m}")))?)
                    }
                },
                on_reject: match &n.on_reject {
                    Some(to) => known(to)?,
                    None => None,
                },
            }),
        };
        nodes.insert(
            name.clone(),
            Node {
                action: actions.remove(0),
                set: n.set.clone(),
                next,
                approval,
            },
        );
    }
    upstreams.sort();
    upstreams.dedup();
    // The code version: what decides the output, as written — not how fast or how far the step may
    // go (`concurrency`, `budget`): raising a budget after it stopped a step resumes the same work.
    let code = format!(
        "{:?}|{:?}|{}|{:?}|{}|{}|{:?}|{:?}",
        f.input,
        f.case_id,
        f.max_steps,
        f.state,
        f.start,
        f.output,
        serde_json::to_string(&f.model).unwrap_or_default(),
        nodes
            .iter()
            .map(|(k, n)| format!(
                "{k}:{:?}:{:?}:{:?}:{:?}",
                n.action, n.set, n.next, n.approval
            ))
            .collect::<Vec<_>>(),
    );
    Ok((
        AgentConfig {
            input,
            case_id: f.case_id,
            budget: Budget {
                tokens: f.budget.tokens,
                cost: f.budget.cost,
                wall_time,
                on_exceed: f.budget.on_exceed,
            },
            concurrency: f.concurrency,
            max_steps: f.max_steps,
            state: f.state,
            start: f.start,
            nodes,
            output: f.output,
            dir: def.dir.to_path_buf(),
        },
        upstreams,
        code,
    ))
}
