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

/// A human version of a byte count, for messages.
pub(crate) fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}
