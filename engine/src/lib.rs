//! Spine's engine: the asset model and everything that turns definitions into durable, versioned data.
//!
//! - [`project`] loads `spine.toml` and asset files into validated [`project::AssetSpec`]s and a [`graph::AssetGraph`];
//! - [`selection`] parses selection expressions; [`staleness`] decides what is out of date;
//! - [`Engine::materialize`] plans and executes runs through [`kinds`], writing Delta tables with
//!   [`warehouse`] and recording every state change first in the [`store`];
//! - [`query`] exposes the run store and asset tables to SQL.

pub mod check;
pub mod clock;
pub mod duration;
pub mod encode;
pub mod engine;
pub mod error;
pub mod graph;
pub mod hash;
pub mod key;
pub mod kinds;
pub mod materialize;
pub mod plan;
pub mod project;
pub mod query;
pub mod recovery;
pub mod selection;
pub mod sql;
pub mod staleness;
pub mod store;
pub mod warehouse;

pub use engine::{AssetStatus, Engine};
pub use error::{DefinitionError, DefinitionErrors, EngineError};
pub use key::{AssetKey, RunId};
pub use materialize::{ExecuteOptions, MaterializeRequest, RunObserver, RunReport, StepReport};
pub use plan::PlannedStep;
pub use project::{AssetSpec, Project, ProjectConfig};
pub use tokio_util::sync::CancellationToken;
