//! Evals for Spine: eval datasets, scorers, eval result tables, rollout gates and promotion history. Not
//! implemented yet: this crate reserves its place in the workspace layout (see DESIGN.md).
