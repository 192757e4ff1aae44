//! Asset kinds that talk to the outside world: `command` (any program, JSON-lines protocol on
//! stdout) and `agent` (an agent graph over an input's rows, against any OpenAI-compatible model,
//! checkpointed node by node) and `temporal` (a Temporal workflow started, awaited and recorded; its
//! client behind the cargo feature `temporal`). Event-bus publishers join here behind features.

pub mod agent;
pub mod cases;
pub mod command;
pub mod openai;
pub mod temporal;

use spine_engine::kinds::KindRegistry;
use std::sync::Arc;

/// The engine's built-in kinds plus every kind in this crate.
pub fn all_kinds() -> KindRegistry {
    let mut r = KindRegistry::builtin();
    r.register(Arc::new(command::CommandKind));
    r.register(Arc::new(agent::AgentKind::new()));
    r.register(Arc::new(temporal::TemporalKind));
    r
}
