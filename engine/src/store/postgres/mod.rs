//! The Postgres run store, for many processes on many machines sharing one state (issue 30), selected
//! by a `postgres://` or `postgresql://` state URL. Its schema is `engine/migrations/postgres`, which
//! carries every table and column of the SQLite store's (a test keeps the two in step).
//!
//! The store's code and SQL are the SQLite store's (`store/sql/`, compiled once per backend with this
//! module's types), so both run the same statements and the same protocol. What differs is here:
//! how the database is opened, how a write transaction begins (`READ COMMITTED`), and that a `SELECT`
//! a transaction then writes from locks its rows (`FOR UPDATE`), which SQLite's one writer at a time
//! gave for free.

use super::migrations::{Embedded, POSTGRES};
use super::*;
use spine_schemas::events::{Event, EventKind};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use std::time::Duration;

/// The backend the shared code in `store/sql/` is compiled for here.
type Db = sqlx::Postgres;
type DbRow = PgRow;
type DbConnection = sqlx::PgConnection;
type Store = PgStore;

/// Locks what a transaction's `SELECT` read until it commits.
const FOR_UPDATE: &str = " FOR UPDATE";

/// Taken before a transaction inserts a run's events, until it commits (see `insert_events`): a
/// transaction-level advisory lock per run, so the run's event ids are allocated in commit order.
/// The call around the run id (a bind parameter).
const EVENT_ORDER_LOCK: Option<(&str, &str)> =
    Some(("pg_advisory_xact_lock(hashtextextended(", ", 0))"));

/// Reclaims the space pruned rows held (`assets gc`) and refreshes the planner's statistics.
const RECLAIM: &str = "VACUUM (ANALYZE)";

/// A step's start and end go to the server as one statement each (`sql/one_statement.rs`): each
/// statement is a round trip.
const ONE_STATEMENT: bool = true;

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

/// The Postgres implementation of [`RunStore`].
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Stamps runs, steps, events and materializations.
    clock: Arc<dyn Clock>,
}

impl PgStore {
    /// Connects to the database at `url` and creates or upgrades its schema.
    pub async fn open(url: &str) -> StoreResult<Self> {
        migrate(url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        Ok(PgStore {
            pool,
            clock: Arc::new(SystemClock),
        })
    }

    /// A write transaction.
    async fn write(&self) -> StoreResult<Tx<'static>> {
        Ok(self.pool.begin().await?)
    }
}

/// Creates the schema the connection's `search_path` names first (`?options[search_path]=NAME` in the
/// URL: projects sharing a database with a schema each), when it does not exist yet.
async fn create_schema(pool: &PgPool) -> StoreResult<()> {
    let current: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await?;
    if current.is_some() {
        return Ok(());
    }
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(pool)
        .await?;
    let first = path
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if first.is_empty() || first == "$user" {
        return Ok(());
    }
    let sql = format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        first.replace('"', "\"\"")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    Ok(())
}

/// Creates or upgrades the run-store schema in the database at `url` (`postgres://…`), in the
/// connection's current schema. Two processes doing it at once are serialized by sqlx's migrator
/// (an advisory lock).
pub async fn migrate(url: &str) -> StoreResult<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    create_schema(&pool).await?;
    sqlx::migrate::Migrator::new(Embedded(POSTGRES))
        .await?
        .run(&pool)
        .await?;
    pool.close().await;
    Ok(())
}
