//! `sql`: DataFusion runs the asset's query (table references already rewritten to asset keys) in the
//! step's session, where every upstream is registered; the result streams to the writer.

use super::{AssetKind, StepContext, StepData, StepError, StepOutput};
use crate::project::AssetBody;
use futures::future::BoxFuture;

/// The `sql` kind.
pub struct SqlKind;

impl AssetKind for SqlKind {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let AssetBody::Sql { rewritten, .. } = &ctx.spec.body else {
                return Err(StepError::permanent(
                    "internal: sql kind got a non-SQL body",
                ));
            };
            let df = ctx
                .session
                .sql(rewritten)
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            let stream = df
                .execute_stream()
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            Ok(StepOutput::data(StepData::Stream(stream)))
        })
    }
}
