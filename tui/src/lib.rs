//! Spine's terminal UI (`assets ui`): the catalog, lineage and runs of a project, live.
//!
//! The state and its key handling ([`app`]), the data it shows ([`model`], read from an engine) and
//! the drawing ([`view`], [`lineage`]) are separate from the terminal ([`run`]), so every screen is
//! tested with ratatui's `TestBackend` and no TTY.

pub mod actions;
pub mod app;
pub mod backfill;
mod detail;
mod edges;
mod jump;
pub mod lineage;
pub mod model;
mod ops;
pub mod state;
mod style;
mod term;
pub mod view;

pub use app::{App, Effect, Tab};
pub use term::{run, Launcher, UiError};
