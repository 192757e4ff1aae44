//! `rust`: an async function registered through the library API returns record batches.

use super::{AssetKind, StepContext, StepData, StepError, StepOutput};
use crate::project::{AssetBody, RustAssetContext};
use futures::future::BoxFuture;

/// The `rust` kind.
pub struct RustKind;

impl AssetKind for RustKind {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let AssetBody::Rust(f) = &ctx.spec.body else {
                return Err(StepError::permanent(
                    "internal: rust kind got a non-Rust body",
                ));
            };
            let input = RustAssetContext {
                run_id: ctx.run_id.to_string(),
                key: ctx.spec.key.clone(),
                session: ctx.session.clone(),
            };
            // A body may return a `StepError` to choose its failure class; anything else is retryable.
            let batches = f(input)
                .await
                .map_err(|e| match e.downcast::<StepError>() {
                    Ok(classed) => *classed,
                    Err(other) => StepError::msg(other),
                })?;
            Ok(StepOutput::data(StepData::Batches(batches)))
        })
    }
}
