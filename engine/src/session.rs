//! DataFusion sessions bounded by the project's memory limit (`[limits] memory`): one memory pool per
//! session that operators reserve from, so a query that needs more than the limit either spills (sorts,
//! aggregations, joins where DataFusion supports it) or fails with "resources exhausted" instead of
//! growing until the machine kills the process.

use crate::project::ProjectConfig;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// A session whose execution memory is capped at `config.memory_limit`.
pub(crate) fn bounded(config: &ProjectConfig, session: SessionConfig) -> SessionContext {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(config.memory_limit),
        NonZeroUsize::new(3).expect("3 is not zero"),
    );
    match RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
    {
        Ok(runtime) => SessionContext::new_with_config_rt(session, runtime),
        Err(e) => {
            tracing::warn!("cannot set up the memory pool ({e}); running without a memory limit");
            SessionContext::new_with_config(session)
        }
    }
}

/// A new session with `run`'s configuration and runtime (the same memory pool) but an empty catalog:
/// a step that reads partitions registers its own view of each upstream without touching the run's.
pub(crate) fn sibling(run: &SessionContext) -> SessionContext {
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(run.copied_config())
        .with_runtime_env(run.runtime_env())
        .with_default_features()
        .build();
    SessionContext::new_with_state(state)
}

/// Registers under `key` the rows of `provider` whose `column` is one of `partitions`.
pub(crate) fn register_partitions(
    session: &SessionContext,
    name: &str,
    provider: Arc<dyn datafusion::catalog::TableProvider>,
    partitions: &[Vec<(String, String)>],
) -> datafusion::error::Result<()> {
    let rows = session
        .read_table(provider)?
        .filter(partitions_filter(partitions))?;
    session.register_table(
        datafusion::common::TableReference::bare(name),
        rows.into_view(),
    )?;
    Ok(())
}

/// The rows of `partitions` (each the column values of one partition): one column gives `c IN (…)`,
/// several (multi-dimensional) `(a = … AND b = …) OR …`, none `false` (no rows).
pub(crate) fn partitions_filter(partitions: &[Vec<(String, String)>]) -> datafusion::prelude::Expr {
    use datafusion::prelude::{ident, lit, Expr};
    let one = |values: &[(String, String)]| -> Expr {
        values
            .iter()
            .map(|(c, v)| ident(c).eq(lit(v.as_str())))
            .reduce(|a, b| a.and(b))
            .unwrap_or(lit(true))
    };
    match partitions {
        [] => lit(false),
        [p] => one(p),
        many if many.iter().all(|p| p.len() == 1) => {
            let column = &many[0][0].0;
            ident(column).in_list(many.iter().map(|p| lit(p[0].1.as_str())).collect(), false)
        }
        many => many
            .iter()
            .map(|p| one(p))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false)),
    }
}

/// A human version of a byte count, for messages.
pub(crate) fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}

/// The `i`th column of the first row of `batches` as an i64 (a count).
pub(crate) fn first_i64(batches: &[arrow::record_batch::RecordBatch], i: usize) -> i64 {
    use arrow::array::Array;
    batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            let c = arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Int64).ok()?;
            let c = c
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()?
                .clone();
            (!c.is_null(0)).then(|| c.value(0))
        })
        .unwrap_or(0)
}
