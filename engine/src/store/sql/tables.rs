// The SQLite implementation of [`TableStore`].

use super::*;
use crate::store::tables::TableStore;

#[async_trait]
impl TableStore for Store {
    async fn record_version_rewrite(&self, key: &AssetKey, from: i64, to: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO version_rewrites (asset_key, from_version, to_version, recorded_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (asset_key, from_version) DO UPDATE SET to_version = excluded.to_version",
        )
        .bind(key.as_str())
        .bind(from)
        .bind(to)
        .bind(self.clock.stamp())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn read_version(&self, key: &AssetKey, version: i64) -> StoreResult<i64> {
        // Rewrites only go forward (to > from), so the walk ends.
        let row = sqlx::query(
            "WITH RECURSIVE chain(v) AS (
                 SELECT $2
                 UNION
                 SELECT r.to_version FROM version_rewrites r JOIN chain c
                   ON r.asset_key = $1 AND r.from_version = c.v AND r.to_version > c.v
             )
             SELECT MAX(v) AS v FROM chain",
        )
        .bind(key.as_str())
        .bind(version)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?.unwrap_or(version))
    }
}
