//! Asset kinds that talk to the outside world: `command` (any program, JSON-lines protocol on
//! stdout) and `agent` (an agent graph over an input's rows, against any OpenAI-compatible model,
//! checkpointed node by node). Temporal workflows and event-bus publishers join here behind cargo
//! features.

pub mod agent;
pub mod cases;
pub mod command;
pub mod openai;

use spine_engine::kinds::KindRegistry;
use std::sync::Arc;

/// The engine's built-in kinds plus every kind in this crate.
pub fn all_kinds() -> KindRegistry {
    let mut r = KindRegistry::builtin();
    r.register(Arc::new(command::CommandKind));
    r.register(Arc::new(agent::AgentKind::new()));
    r
}
