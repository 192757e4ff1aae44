//! The `temporal` kind ([`config`] has its definition): a Temporal workflow as an asset. A step
//! starts the workflow (its input built from upstream assets), parks while it runs — no slot held;
//! each daemon pass asks Temporal whether it ended ([`AwaitsExternal`]) — and records the workflow's
//! result as the asset's data when it completes, with the workflow and run ids in the
//! materialization's metadata and the Delta commit info.
//!
//! The workflow id is derived from the step key, the code version and the input versions read: a
//! retry or a restart attaches to the running workflow and a completed one is never started again,
//! while new upstream data or a new definition starts a new one. The Temporal client is behind the
//! cargo feature `temporal`; without it the kind says so at `assets check`.

#[cfg(feature = "temporal")]
mod client;
pub mod config;
#[cfg(feature = "temporal")]
pub mod queue;

#[cfg(feature = "temporal")]
use config::TemporalConfig;
use config::CODE;
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
#[cfg(feature = "temporal")]
use spine_engine::kinds::AwaitsExternal;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, StepContext, StepError, StepOutput,
};
use spine_engine::project::AssetBody;
use std::sync::Arc;

/// The `temporal` kind.
pub struct TemporalKind;

/// The workflow id of `step`'s work: the same for a retry or a restart, new for new code or data.
pub fn workflow_id(ctx: &StepContext) -> String {
    let work = format!(
        "{}\u{1f}{}",
        ctx.spec.code_version,
        crate::cases::inputs_digest(ctx)
    );
    format!("spine:{}:{}", ctx.step, short_hash(work.as_bytes()))
}

#[cfg(feature = "temporal")]
async fn execute(ctx: &StepContext) -> Result<StepOutput, StepError> {
    use client::State;
    let c = ctx
        .spec
        .body
        .config::<TemporalConfig>()
        .ok_or_else(|| StepError::permanent("a temporal asset without its configuration"))?;
    let id = workflow_id(ctx);
    let input = match &c.input {
        Some(q) => Some(serde_json::Value::Array(
            crate::cases::query_rows(ctx, q, "the workflow's input")
                .await?
                .into_iter()
                .map(serde_json::Value::Object)
                .collect(),
        )),
        None => None,
    };
    let client = client::connect(c).await.map_err(StepError::retryable)?;
    client::start(&client, c, &id, input.as_ref())
        .await
        .map_err(StepError::retryable)?;
    let (state, run_id) = client::state(&client, &id)
        .await
        .map_err(StepError::retryable)?;
    match state {
        State::Running => {
            // What the daemon's poll reads; the first run of this step keeps it.
            let handle = serde_json::json!({"workflow_id": id, "run_id": run_id});
            ctx.checkpoints
                .put(
                    &spine_engine::kinds::parked_key(&ctx.run_id, &ctx.step),
                    0,
                    "workflow",
                    &handle,
                )
                .await
                .map_err(|e| StepError::retryable(format!("the run store's checkpoints: {e}")))?;
            Ok(StepOutput::waiting(format!(
                "temporal workflow '{id}' (run {run_id}) is running"
            )))
        }
        State::Ended(why) => Err(StepError::retryable(why)),
        State::Completed(result) => {
            let batch = crate::cases::json_batch(&result)
                .map_err(|e| StepError::permanent(format!("workflow '{id}': {e}")))?;
            let mut out = StepOutput::data(spine_engine::kinds::StepData::Batches(vec![batch]));
            out.metadata
                .insert("workflow_id".into(), serde_json::json!(id));
            out.metadata
                .insert("workflow_run_id".into(), serde_json::json!(run_id));
            out.metadata
                .insert("workflow".into(), serde_json::json!(c.workflow));
            Ok(out)
        }
    }
}

/// Sends the signal `name` (with `payload`) to workflow `id` of the asset `c` describes.
#[cfg(feature = "temporal")]
pub async fn signal(
    c: &TemporalConfig,
    id: &str,
    name: &str,
    payload: Option<&serde_json::Value>,
) -> Result<(), String> {
    client::signal(&client::connect(c).await?, id, name, payload).await
}

/// Asks workflow `id` of the asset `c` describes the query `name` (with `payload`).
#[cfg(feature = "temporal")]
pub async fn query(
    c: &TemporalConfig,
    id: &str,
    name: &str,
    payload: Option<&serde_json::Value>,
) -> Result<serde_json::Value, String> {
    client::query(&client::connect(c).await?, id, name, payload).await
}

#[cfg(not(feature = "temporal"))]
async fn execute(_ctx: &StepContext) -> Result<StepOutput, StepError> {
    Err(StepError::permanent(
        "this build of Spine has no Temporal client: build it with `--features temporal`",
    ))
}

#[cfg(feature = "temporal")]
#[async_trait::async_trait]
impl AwaitsExternal for TemporalConfig {
    async fn ended(
        &self,
        run: &spine_engine::RunId,
        step: &spine_engine::StepKey,
        checkpoints: &dyn spine_engine::kinds::checkpoints::Checkpoints,
    ) -> Result<bool, String> {
        let stored = checkpoints
            .load(&spine_engine::kinds::parked_key(run, step))
            .await?;
        let Some(id) = stored
            .first()
            .and_then(|h| h.delta["workflow_id"].as_str().map(str::to_string))
        else {
            // Nothing to poll: let the step run again and find out.
            return Ok(true);
        };
        let client = client::connect(self).await?;
        let (state, _) = client::state(&client, &id).await?;
        Ok(!matches!(state, client::State::Running))
    }
}

impl AssetKind for TemporalKind {
    fn name(&self) -> &'static str {
        "temporal"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        if !cfg!(feature = "temporal") {
            return Err(def
                .error(CODE, "this build of Spine has no Temporal client")
                .hint("build it with `cargo build --features temporal` (as .ci/run does)"));
        }
        let (config, upstreams, code) = config::parse(def)?;
        let mut out = KindConfig::new(
            AssetBody::Kind(Arc::new(config)),
            short_hash(code.as_bytes()),
        );
        out.upstreams = upstreams;
        Ok(out)
    }

    #[cfg(feature = "temporal")]
    fn awaits_external<'a>(&self, body: &'a AssetBody) -> Option<&'a dyn AwaitsExternal> {
        body.config::<TemporalConfig>()
            .map(|c| c as &dyn AwaitsExternal)
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> futures::future::BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(execute(ctx))
    }
}
