//! The `agent` kind ([`config`] has its definition): an agent graph run over every row of an input
//! asset, one case per row, each case node by node from `start` until a node leads to `end`. Each
//! completed node is stored as a checkpoint ([`spine_engine::kinds::checkpoints`]) keyed by the work —
//! step, case, code version, the input versions read — so a killed, failed or re-run step continues
//! from the last completed node and never pays for a model call twice ([`case`]). Budgets of tokens,
//! cost and wall time stop the step with a permanent, named failure and a `budget_exceeded` event
//! (and the run, with `on_exceed: stop_run`); a rate limit fails the attempt retryably, the next one
//! no sooner than the endpoint's `Retry-After`. The table ([`table`]) has one row per case.

pub mod case;
pub mod config;
pub mod graph;
pub mod nodes;
pub mod table;

use config::{Action, AgentConfig, CODE};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::checkpoints::CheckpointKey;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput, UpstreamSchemas,
};
use spine_engine::project::{AssetBody, AssetSpec};
use std::collections::HashMap;
use std::sync::Arc;

/// How the park reason of an agent step that waits for a human decision begins (`assets approvals`
/// lists the steps whose reason does).
pub const APPROVAL_NEEDED: &str = "approval needed";

/// A Rust function an agent's `rust:` node calls: the case's fields (its row, then its state) in,
/// its result out (a value for the node's `set`, or an object of state fields), or the case's error.
pub type AgentFunction = Arc<dyn Fn(&Map<String, Value>) -> Result<Value, String> + Send + Sync>;

/// The `agent` kind, with the functions its `rust:` nodes may call.
#[derive(Default, Clone)]
pub struct AgentKind {
    functions: HashMap<String, AgentFunction>,
}

impl AgentKind {
    /// The kind with no functions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kind with `f` callable as `rust: NAME`.
    pub fn function(
        mut self,
        name: &str,
        f: impl Fn(&Map<String, Value>) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.functions.insert(name.to_string(), Arc::new(f));
        self
    }
}

async fn execute(kind: &AgentKind, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let c = ctx
        .spec
        .body
        .config::<AgentConfig>()
        .ok_or_else(|| StepError::permanent("an agent asset without its configuration"))?;
    let cases = crate::cases::read(ctx, &c.input, &c.case_id).await?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| StepError::permanent(format!("cannot build an HTTP client: {e}")))?;
    let spend = case::Spend::new(c);
    let tools = nodes::Tools {
        ctx,
        client: &client,
        functions: &kind.functions,
        dir: &c.dir,
    };
    let inputs = crate::cases::inputs_digest(ctx);
    let decision = case::decision(ctx.signal.as_ref());
    // The cases' futures, made up front (a closure over borrowed rows inside the stream would not
    // be general enough for the boxed future); `buffered` polls `concurrency` at a time, in order.
    let runs: Vec<_> = cases
        .iter()
        .map(|(id, row)| {
            let key = CheckpointKey {
                step: ctx.step.clone(),
                case_id: id.clone(),
                code_version: ctx.spec.code_version.clone(),
                inputs: inputs.clone(),
            };
            case::run(&tools, c, &spend, key, row, decision)
        })
        .collect();
    let results: Vec<case::CaseResult> = futures::stream::iter(runs)
        .buffered(c.concurrency)
        .try_collect()
        .await?;
    let used = spend.used();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let resumed: usize = results.iter().map(|r| r.resumed).sum();
    ctx.events
        .log(
            "info",
            &format!(
                "{} cases ({errors} with an error): {} model calls, {} tokens, cost {:.4}; {resumed} node(s) resumed from checkpoints",
                results.len(),
                used.calls,
                used.prompt_tokens + used.completion_tokens,
                used.cost
            ),
        )
        .await;
    let pending: Vec<&str> = results
        .iter()
        .filter_map(|r| r.pending.as_deref())
        .collect();
    if !pending.is_empty() {
        // Parked: no slot is held; `assets approve|reject` signals it and the run goes on, every
        // case from its checkpoints.
        for why in &pending {
            ctx.events.log("info", why).await;
        }
        let mut reason = format!(
            "{APPROVAL_NEEDED} for {} case(s): {}",
            pending.len(),
            pending
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join("; ")
        );
        if pending.len() > 3 {
            reason.push_str("; …");
        }
        return Ok(StepOutput::waiting(reason));
    }
    let batch = table::batch(c, &results)?;
    let mut out = StepOutput::data(StepData::Batches(vec![batch]));
    for (k, v) in [
        ("cases", serde_json::json!(results.len())),
        ("case_errors", serde_json::json!(errors)),
        ("model_calls", serde_json::json!(used.calls)),
        ("prompt_tokens", serde_json::json!(used.prompt_tokens)),
        (
            "completion_tokens",
            serde_json::json!(used.completion_tokens),
        ),
        ("cost", serde_json::json!(used.cost)),
        ("resumed_nodes", serde_json::json!(resumed)),
    ] {
        out.metadata.insert(k.into(), v);
    }
    Ok(out)
}

impl AssetKind for AgentKind {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        let (config, upstreams, code) = config::parse(def)?;
        for (name, n) in &config.nodes {
            if let Action::Rust(f) = &n.action {
                if !self.functions.contains_key(f) {
                    let mut known: Vec<&str> = self.functions.keys().map(String::as_str).collect();
                    known.sort();
                    return Err(def
                        .error(CODE, format!("nodes.{name}: no agent function '{f}' is registered"))
                        .hint(if known.is_empty() {
                            "register one with AgentKind::function in the program that runs the project".to_string()
                        } else {
                            format!("registered: {}", known.join(", "))
                        }));
                }
            }
        }
        let mut out = KindConfig::new(
            AssetBody::Kind(Arc::new(config)),
            short_hash(code.as_bytes()),
        );
        out.upstreams = upstreams;
        Ok(out)
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> futures::future::BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(execute(self, ctx))
    }

    /// Known from the definition alone; the input must have the case id column.
    fn schema<'a>(
        &'a self,
        spec: &'a AssetSpec,
        upstream: &'a UpstreamSchemas,
    ) -> futures::future::BoxFuture<'a, SchemaProbe> {
        Box::pin(async move {
            let Some(c) = spec.body.config::<AgentConfig>() else {
                return SchemaProbe::Unknown(String::new());
            };
            if let Some(d) = upstream.get(&c.input) {
                if d.field_with_name(&c.case_id).is_err() {
                    return SchemaProbe::Invalid(
                        DefinitionError::new(
                            CODE,
                            format!("the input '{}' has no column '{}'", c.input, c.case_id),
                        )
                        .asset(spec.key.as_str())
                        .at_opt(spec.source.clone())
                        .hint("`case_id` (default `id`) names the input's id column"),
                    );
                }
            }
            SchemaProbe::Known(Arc::new(table::schema(c)))
        })
    }
}
