//! Reads: questions the CLI and the UI ask of the run store and the project that are answered over
//! several floors (partition states, recorded lineage). On the top floor, beside `Engine`, so the
//! modules below need not know the engine.

mod column_walk;
mod dry_run;
pub mod history;
mod partition_lineage;
mod partition_status;
mod status;
pub use status::{AssetStatus, HeldBack, PartitionCounts};

pub use partition_lineage::LineageNode;
pub(crate) use partition_status::failed;
