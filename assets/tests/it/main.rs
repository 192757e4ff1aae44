//! Every integration test of the CLI in one test binary: one link of DataFusion, delta-rs and the AWS SDK instead of one per file (issue 28). Each module is one area; `common` holds the helpers (temporary projects, the real binary), `s3_support` the S3 server and proxy.

mod common;
mod openai_support;
mod s3_support;

mod agents;
mod approvals;
mod audit;
mod backfill;
mod bad_input;
mod checks;
mod column_lineage;
mod command;
mod contracts;
mod control;
mod crash;
mod daemon;
mod declared_schema;
mod delta_source;
mod disk_full;
mod docs;
mod evals;
mod events;
mod feature_views;
mod guardrails;
mod hardening;
mod history;
mod incremental;
mod integrity;
mod interop;
mod maintenance;
mod materialize;
mod merge;
mod multi_partitions;
mod newcomer;
mod online;
mod partitions;
mod pg_cluster;
mod postgres_source;
mod reproduce;
mod run_budgets;
mod s3;
mod s3_faults;
mod source_checks;
mod sources;
mod store_faults;
#[cfg(feature = "temporal")]
mod temporal;
#[cfg(feature = "temporal")]
mod temporal_executor;
mod training_sets;
mod ui;
mod workers;
mod workers_soak;
