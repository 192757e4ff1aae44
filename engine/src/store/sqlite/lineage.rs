//! The SQLite implementation of [`LineageStore`].

use super::*;
use crate::store::lineage::LineageStore;

#[async_trait]
impl LineageStore for SqliteStore {
    async fn materialization(&self, id: i64) -> StoreResult<Option<Materialization>> {
        sqlx::query("SELECT * FROM materializations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| mat_from_row(&r))
            .transpose()
    }

    async fn readers(&self, key: &AssetKey, id: i64) -> StoreResult<Vec<Materialization>> {
        sqlx::query(
            "SELECT DISTINCT m.* FROM lineage l JOIN materializations m ON m.id = l.materialization_id
             WHERE l.upstream_key = ? AND l.upstream_materialization_id = ? ORDER BY m.id",
        )
        .bind(key.as_str())
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(mat_from_row)
        .collect()
    }
}
