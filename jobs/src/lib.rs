//! Asset kinds that talk to the outside world. Today: `command` (any program, JSON-lines protocol on
//! stdout). Agent runs, Temporal workflows and event-bus publishers join here behind cargo features.

pub mod command;

use spine_engine::kinds::KindRegistry;
use std::sync::Arc;

/// The engine's built-in kinds plus every kind in this crate.
pub fn all_kinds() -> KindRegistry {
    let mut r = KindRegistry::builtin();
    r.register(Arc::new(command::CommandKind));
    r
}
