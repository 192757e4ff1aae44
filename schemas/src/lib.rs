//! Spine's contracts: the definition files users write (`spine.toml`, asset YAML) and the domain events the
//! engine appends to its event log, as serde types. Everything outside the engine that reads or writes these
//! (the CLI, the terminal UI, event-bus publishers, other tools) goes through these types.
//!
//! Versioning: [`SCHEMA_VERSION`] is bumped on any incompatible change; additions are backwards compatible.
//! The types as JSON Schema are in [`json`] and, checked in, in `schemas/json/` (docs/reference/contracts.md).

pub mod definitions;
pub mod events;
pub mod json;

/// Version of the definition-file and event formats in this crate.
pub const SCHEMA_VERSION: u32 = 1;
