//! Every integration test of the engine in one test binary (one link instead of one per file). Golden fixtures stay in `engine/tests/fixtures/`.

mod automation;
mod backfill;
mod capability;
mod column_lineage;
mod daemon;
mod executor;
mod layering;
mod library;
mod loader_fuzz;
mod partitions;
mod queue;
mod recovery;
mod selection;
mod sensors;
mod store;
