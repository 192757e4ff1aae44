//! SQLite run store (the embedded default): WAL journal, `synchronous = FULL`, migrations embedded.
//!
//! The store's code and SQL live in `store/sql/` and are compiled once per backend (here and in
//! `store::postgres`) with this module's types: both backends run the same statements, so the same
//! protocol. What differs is here: how the database is opened and how a write transaction begins.

use super::*;
use spine_schemas::events::{Event, EventKind};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// The backend the shared code in `store/sql/` is compiled for here.
type Db = sqlx::Sqlite;
type DbRow = SqliteRow;
type DbConnection = sqlx::SqliteConnection;
type Store = SqliteStore;

/// How a `SELECT` that a transaction then writes from locks what it read: nothing to add in SQLite,
/// whose write transactions hold the database's write lock from their start.
const FOR_UPDATE: &str = "";

/// Taken before a transaction inserts a run's events, until it commits (see `insert_events`): none
/// in SQLite, whose writers commit one at a time in the order they allocate ids.
const EVENT_ORDER_LOCK: Option<(&str, &str)> = None;

/// Reclaims the space pruned rows held (`assets gc`).
const RECLAIM: &str = "VACUUM";

mod open;

/// A step's start and end run as separate statements: SQLite runs in process, with no round trips to
/// save (`sql/one_statement.rs` is Postgres's).
const ONE_STATEMENT: bool = false;

shared_store_code!(
    audit,
    backfills,
    checkpoints,
    checks,
    claims,
    control,
    daemon,
    lineage,
    one_statement,
    outbox,
    partitions,
    retention,
    rows,
    runs,
    tables,
    txn,
    workers,
);

use one_statement::*;
use outbox::*;
use rows::*;
use txn::*;

/// The SQLite implementation of [`RunStore`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Stamps runs, steps, events and materializations.
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// A write transaction. `BEGIN IMMEDIATE` takes the database's write lock first (waiting up to
    /// the busy timeout), so a transaction that reads before it writes never fails halfway with
    /// `SQLITE_BUSY`: a deferred one cannot upgrade to writing once another connection committed.
    async fn write(&self) -> StoreResult<Tx<'static>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}
