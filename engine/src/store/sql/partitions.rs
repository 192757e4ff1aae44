// The SQLite implementation of [`PartitionStore`].

use super::*;
use crate::store::partitions::PartitionStore;

#[async_trait]
impl PartitionStore for Store {
    async fn add_dynamic_partitions(
        &self,
        name: &str,
        keys: &[PartitionKey],
    ) -> StoreResult<usize> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let mut added = 0;
        for k in keys {
            added += sqlx::query(
                "INSERT INTO dynamic_partitions (name, key, added_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name, key) DO NOTHING",
            )
            .bind(name)
            .bind(k.as_str())
            .bind(&ts)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn dynamic_partitions(&self) -> StoreResult<HashMap<String, Vec<PartitionKey>>> {
        let rows = sqlx::query("SELECT name, key FROM dynamic_partitions ORDER BY rowid")
            .fetch_all(&self.pool)
            .await?;
        let mut out: HashMap<String, Vec<PartitionKey>> = HashMap::new();
        for r in &rows {
            out.entry(r.try_get("name")?)
                .or_default()
                .push(PartitionKey(r.try_get("key")?));
        }
        Ok(out)
    }
}
