//! Running the data checks declared beside an asset (their definitions: [`crate::project::checks`],
//! re-exported here) on every new materialization after its Delta commit and before it is published
//! (write-audit-publish, `run.rs`); outcomes are records ([`crate::store::CheckOutcome`]).

mod rollout;
mod run;

pub use crate::project::checks::*;
pub use crate::store::CheckOutcome;
pub use rollout::{Rollout, RolloutVersion};
pub(crate) use run::read_versions;
pub use run::Checked;
