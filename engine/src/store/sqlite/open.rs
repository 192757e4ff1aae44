//! Opening the SQLite run store: the database file created if missing, WAL with full syncs, a busy
//! timeout, foreign keys; the embedded migrations applied; two processes opening a new project at once
//! both end up with it ready.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> StoreResult<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(parent) = std::path::Path::new(path).parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        // Two processes opening a new project at once race to switch it to WAL and to migrate it
        // ("database is locked", "table already exists"); the loser retries the whole open and then
        // finds the database ready.
        let mut attempt: u64 = 0;
        let pool = loop {
            match Self::connect_and_migrate(opts.clone()).await {
                Ok(pool) => break pool,
                // A full or unwritable disk does not get better by waiting.
                Err(e) if attempt < 20 && !e.is_disk_full() => {
                    attempt += 1;
                    tracing::debug!(
                        "opening the run store, attempt {attempt} failed ({e}); retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(SqliteStore {
            pool,
            clock: Arc::new(SystemClock),
        })
    }
}

impl SqliteStore {
    async fn connect_and_migrate(opts: SqliteConnectOptions) -> StoreResult<SqlitePool> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    if crate::error::disk_full_seen() {
                        // An idle connection is never inside a transaction, unless one failed on a
                        // full disk and stayed open: end it, or what follows on it never commits.
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    }
                    Ok(true)
                })
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate::Migrator::new(crate::store::migrations::Embedded(
            crate::store::migrations::SQLITE,
        ))
        .await?
        .run(&pool)
        .await?;
        Ok(pool)
    }
}
