//! Spine's engine: the asset model and everything that turns definitions into durable, versioned data.
//!
//! - [`project`] loads `spine.toml` and asset files into validated [`project::AssetSpec`]s and a [`graph::AssetGraph`];
//! - [`selection`] parses selection expressions; [`Engine::status`] says what is out of date and why
//!   ([`Freshness`]);
//! - [`Engine::submit`] records a run, [`Engine::execute`] runs it through [`kinds`] (which own their
//!   configuration), writing Delta tables with [`warehouse`] and recording every state change first in
//!   the [`store`] (a trait; SQLite today), with time from an injected [`clock`];
//! - [`query`] exposes the run store and asset tables to SQL; [`check`] plans every SQL asset.
//!
//! Everything else (the executor's parts, encoding, SQL analysis) is private to the crate.

pub mod automation;
mod backfill;
pub mod check;
pub mod checks;
pub mod clock;
pub mod column_lineage;
mod daemon;
mod doctor;
pub mod duration;
mod encode;
mod engine;
mod instance;
pub use instance::Instance;
pub mod error;
pub mod events;
mod facts;
pub mod graph;
pub mod hash;
pub mod key;
pub mod kinds;
pub mod loader;
pub mod maintenance;
mod materialize;
pub mod partitions;
mod plan;
pub mod project;
pub mod query;
pub mod reads;
pub use reads::history;
mod recovery;
pub mod redact;
pub mod schedule;
pub mod selection;
pub mod sensor;
mod session;
mod sql;
mod staleness;
pub mod store;
pub mod upstream;
pub mod warehouse;

pub use backfill::{BackfillFilter, BackfillRequest, BackfillState, BackfillStatus, ChunkStatus};
pub use daemon::{DaemonPass, Evaluation, SensedObject, DAEMON_LEASE};
pub use doctor::{Diagnosis, Repair};
pub use engine::{actor_name, role_needed, user_name, Engine};
pub use error::{DefinitionError, DefinitionErrors, EngineError};
pub use key::{AssetKey, BackfillId, PartitionKey, RunId, StepKey};
pub use materialize::{
    Diff, ExecuteOptions, InProcessQueue, MaterializeRequest, QueueError, Reproduction, Rerun,
    RunObserver, RunReport, StepQueue, StepReport, StepTask, TakenTask, Target, TaskOutcome,
    WorkerOptions, WorkerReport,
};
pub use plan::PlannedStep;
pub use project::{AssetSpec, Project, ProjectConfig};
pub use reads::{AssetStatus, HeldBack, PartitionCounts};
pub use recovery::{is_interrupted, Recovered};
pub use staleness::Freshness;
pub use tokio_util::sync::CancellationToken;
