//! The Spine terminal UI (ratatui): lineage graph, asset catalog, runs, live logs, backfills. Not
//! implemented yet: this crate reserves its place in the workspace layout (see DESIGN.md).
