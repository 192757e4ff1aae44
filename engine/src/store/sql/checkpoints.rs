// The implementation of [`CheckpointStore`] (agent checkpoints, `store::checkpoints`).

use super::*;
use crate::store::checkpoints::{Checkpoint, CheckpointKey, CheckpointStore};

#[async_trait]
impl CheckpointStore for Store {
    async fn put_checkpoint(
        &self,
        key: &CheckpointKey,
        position: i64,
        node: &str,
        delta: &serde_json::Value,
    ) -> StoreResult<bool> {
        let stored = sqlx::query(
            "INSERT INTO agent_checkpoints (asset_key, partition_key, case_id, code_version, inputs,
               position, node, delta, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (asset_key, partition_key, case_id, code_version, inputs, position) DO NOTHING",
        )
        .bind(key.step.asset.as_str())
        .bind(key.step.partition_str())
        .bind(&key.case_id)
        .bind(&key.code_version)
        .bind(&key.inputs)
        .bind(position)
        .bind(node)
        .bind(crate::redact::redact(&delta.to_string()))
        .bind(self.clock.stamp())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(stored == 1)
    }

    async fn checkpoints(&self, key: &CheckpointKey) -> StoreResult<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT position, node, delta, created_at FROM agent_checkpoints
             WHERE asset_key = $1 AND partition_key = $2 AND case_id = $3 AND code_version = $4
               AND inputs = $5
             ORDER BY position",
        )
        .bind(key.step.asset.as_str())
        .bind(key.step.partition_str())
        .bind(&key.case_id)
        .bind(&key.code_version)
        .bind(&key.inputs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let delta: String = r.try_get("delta")?;
                Ok(Checkpoint {
                    position: r.try_get("position")?,
                    node: r.try_get("node")?,
                    delta: serde_json::from_str(&delta)
                        .map_err(|e| StoreError::Corrupt(format!("checkpoint delta: {e}")))?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}
