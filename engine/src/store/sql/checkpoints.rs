// The implementation of [`CheckpointStore`] (agent checkpoints, `store::checkpoints`).

use super::*;
use crate::store::checkpoints::{Checkpoint, CheckpointKey, CheckpointStore, RunSpend};

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

    async fn add_run_spend(
        &self,
        run: &RunId,
        step: &StepKey,
        tokens: i64,
        cost: f64,
    ) -> StoreResult<RunSpend> {
        // Billionths: sums of many small costs stay exact, and the schema has no floating column.
        let nanos = (cost * 1e9).round() as i64;
        if tokens != 0 || nanos != 0 {
            sqlx::query(
                "INSERT INTO run_spend (run_id, asset_key, partition_key, tokens, cost_nanos)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (run_id, asset_key, partition_key) DO UPDATE
                   SET tokens = run_spend.tokens + excluded.tokens,
                       cost_nanos = run_spend.cost_nanos + excluded.cost_nanos",
            )
            .bind(run.as_str())
            .bind(step.asset.as_str())
            .bind(step.partition_str())
            .bind(tokens)
            .bind(nanos)
            .execute(&self.pool)
            .await?;
        }
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT) AS tokens,
                    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS nanos
             FROM run_spend WHERE run_id = $1",
        )
        .bind(run.as_str())
        .fetch_one(&self.pool)
        .await?;
        let nanos: i64 = row.try_get("nanos")?;
        Ok(RunSpend {
            tokens: row.try_get("tokens")?,
            cost: nanos as f64 / 1e9,
        })
    }
}
