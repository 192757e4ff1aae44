//! Evals for Spine: `kind: eval` runs a subject (a prompt to any OpenAI-compatible model, or a
//! command) over an eval dataset asset, scores each answer ([`scorers`]) and writes one row per case
//! and sample; its gate ([`gate`]) audits each new version before it is published, with thresholds,
//! must-pass cases and a paired regression test against the published baseline ([`stats`]).

pub mod config;
pub mod eval;
pub mod gate;
pub mod scorers;
pub mod stats;
pub mod subject;

/// Adds this crate's kinds (`eval`) to `registry`.
pub fn register(registry: &mut spine_engine::kinds::KindRegistry) {
    registry.register(std::sync::Arc::new(eval::EvalKind));
}
