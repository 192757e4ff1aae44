//! Run-store behaviour: one conformance suite, a body per store half written against the `RunStore`
//! trait, run against every backend (`suite!`), and what only one backend has (SQLite's file).

use spine_engine::key::{AssetKey, PartitionKey, RunId, StepKey};
use spine_engine::store::*;
use spine_schemas::events::EventKind;
use std::sync::Arc;

mod audit;
mod backfills;
mod checkpoints;
mod checks;
mod claims;
mod control;
mod daemon;
mod lineage;
mod partitions;
mod pg;
mod races;
mod records;
mod retention;
mod tables;
mod workers;

/// One test per body per backend: `store::{backend}::{half}::{body}`. `$open` gives a fresh, empty
/// store and whatever must live as long as it.
macro_rules! suite {
    ($backend:ident, $open:path; $($half:ident: [$($body:ident),* $(,)?]);* $(;)?) => {
        mod $backend {
            $(mod $half {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $body() {
                    let Some((_keep, store)) = $open().await else { return };
                    crate::store::$half::$body(store).await;
                })*
            })*
        }
    };
}

macro_rules! every_backend {
    ($($backend:ident, $open:path);* $(;)?) => {
        $(suite!($backend, $open;
            audit: [appended_in_a_chain_that_names_tampering];
            records: [basics, lifecycle, partitions_are_separate_step_keys, overtaken_records_are_not_recorded];
            races: [sequence_numbers_are_unique_under_concurrency, tailing_events_by_id_skips_none,
                    concurrent_finishes_keep_records_in_sequence];
            claims: [step_claims_have_one_holder_until_released_or_expired, claimed_start_is_atomic_with_the_claim,
                     renewing_an_owners_claims_reports_the_ones_it_still_holds];
            checks: [rollouts, check_results_and_held_back_versions];
            checkpoints: [stored_per_node_and_resumed_by_the_same_work, run_spend_adds_up_per_run];
            backfills: [backfills_record_chunks_runs_and_outcomes];
            control: [cancel_and_progress, cancel_racing_start];
            daemon: [ticks_and_the_daemon_lock];
            lineage: [readers_and_column_lineage];
            partitions: [dynamic_partitions];
            retention: [pruning_keeps_what_is_read];
            tables: [version_rewrites];
            workers: [worker_runs_lists_what_workers_may_take, ready_steps_start_once,
                      reclaims_take_over_expired_attempts_once, pending_steps_and_runs_end_once,
                      limits_cap_live_claims];
        );)*
    };
}

every_backend!(
    sqlite, crate::store::open_sqlite;
    postgres, crate::store::open_postgres;
);

pub async fn open_sqlite() -> Option<(tempfile::TempDir, Arc<dyn RunStore>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    let store = open_store(&url).await.unwrap();
    Some((dir, store))
}

/// A store in a fresh database on the test server (none without one, outside CI).
pub async fn open_postgres() -> Option<(pg::Database, Arc<dyn RunStore>)> {
    let db = pg::Database::new(&pg::server()?).await;
    let store = open_store(&db.url).await.unwrap();
    Some((db, store))
}

pub fn run(id: &RunId) -> RunRecord {
    RunRecord::queued(id, now(), None)
}

pub fn step(id: &RunId, key: &AssetKey, pos: i64) -> StepRecord {
    StepRecord::planned(id, pos, &StepKey::whole(key.clone()))
}

pub fn mat(id: &RunId, key: &AssetKey, seq: i64, version: i64) -> NewMaterialization {
    NewMaterialization {
        asset_key: key.clone(),
        partition_key: None,
        run_id: id.clone(),
        step_id: key.to_string(),
        seq,
        delta_version: version,
        row_count: 7,
        schema: serde_json::json!([]),
        data_version: "d".into(),
        code_version: "c".into(),
        upstream: vec![UpstreamRead {
            key: AssetKey::parse("up").unwrap(),
            partition: None,
            materialization_id: Some(1),
            delta_version: Some(3),
        }],
        metadata: serde_json::json!({"k": 1}),
        published: true,
        checks: Vec::new(),
        columns: Vec::new(),
    }
}

pub fn claim(run: &RunId, asset: &str, owner: &str, until: i64) -> StepClaim {
    StepClaim {
        step: StepKey::whole(AssetKey::parse(asset).unwrap()),
        run_id: run.clone(),
        owner: owner.into(),
        lease_until_ms: until,
    }
}

/// Records a materialization of `key` at Delta `version` in run `r` (published or held back).
pub async fn record(
    store: &Arc<dyn RunStore>,
    r: &RunId,
    key: &AssetKey,
    version: i64,
    published: bool,
) -> i64 {
    let ev = |k| NewEvent::new(r, Some(key.as_str()), k, "info", "x");
    let started = store
        .start_step(
            r,
            &StepKey::whole(key.clone()),
            1,
            ev(EventKind::StepStarted),
        )
        .await
        .unwrap();
    let mut m = mat(r, key, started.seq, version);
    m.published = published;
    let outcome = StepOutcome {
        failure_class: None,
        status: StepStatus::Succeeded,
        error: None,
        reason: None,
        materialization: Some(m),
        events: vec![ev(EventKind::Materialization)],
    };
    store
        .finish_step(r, &StepKey::whole(key.clone()), outcome)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/s/state.db", dir.path().display());
    let id = RunId::new();
    {
        let store = open_store(&url).await.unwrap();
        store.create_run(&run(&id), &[]).await.unwrap();
    }
    let store = open_store(&url).await.unwrap();
    assert_eq!(
        store.get_run(id.as_str()).await.unwrap().status,
        RunStatus::Queued
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_of_a_new_database_all_succeed() {
    // Several processes opening a fresh project at once race to switch it to WAL and migrate it.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/state.db", dir.path().display());
        let opens: Vec<_> = (0..6)
            .map(|_| tokio::spawn(open_store_owned(url.clone())))
            .collect();
        for o in opens {
            o.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

async fn open_store_owned(url: String) -> Result<(), String> {
    let store = open_store(&url).await.map_err(|e| e.to_string())?;
    store.list_runs(1).await.map_err(|e| e.to_string())?;
    Ok(())
}
