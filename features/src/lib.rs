//! Feature views for Spine: entity keys, windowed aggregations, point-in-time-correct training sets and an
//! online snapshot, built on the engine's asset model. Not implemented yet: this crate reserves its place
//! in the workspace layout (see DESIGN.md); the feature-view issue fills it.
