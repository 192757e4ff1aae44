//! The Postgres run store, for many processes on many machines sharing one state (issue 30). Landed so
//! far: its schema, `engine/migrations/postgres`, which carries every table and column of the SQLite
//! store's (a test keeps the two in step), and the way to apply it. The store itself comes next;
//! until then `open_store` refuses `postgres://` URLs (E0109).

use super::migrations::{Embedded, POSTGRES};
use super::StoreResult;
use sqlx::postgres::PgPoolOptions;

/// Creates or upgrades the run-store schema in the database at `url` (`postgres://…`), in the
/// connection's current schema.
pub async fn migrate(url: &str) -> StoreResult<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::migrate::Migrator::new(Embedded(POSTGRES))
        .await?
        .run(&pool)
        .await?;
    pool.close().await;
    Ok(())
}
