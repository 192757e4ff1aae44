// Step claims and the run lease in SQLite: the bodies of the [`RunStore`] claim methods.

use super::*;

impl Store {
    pub(super) async fn claim_step_in(
        &self,
        claim: &StepClaim,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<ClaimOutcome> {
        let mut tx = self.write().await?;
        let outcome = if upsert_claim(&mut tx, claim, now_ms, takeover_from).await? {
            Some(ClaimOutcome::Claimed)
        } else {
            claim_holder(&mut *tx, &claim.step)
                .await?
                .map(ClaimOutcome::Held)
        };
        tx.commit().await?;
        match outcome {
            Some(o) => Ok(o),
            // Released between the two statements: try again.
            None => self.claim_step(claim, now_ms, takeover_from).await,
        }
    }

    pub(super) async fn renew_claim_in(
        &self,
        step: &StepKey,
        owner: &str,
        lease_until_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE step_claims SET lease_until = $1 WHERE asset_key = $2 AND partition_key = $3 AND owner = $4",
        )
        .bind(lease_until_ms)
        .bind(step.asset.as_str())
        .bind(step.partition_str())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn renew_claims_in(
        &self,
        owner: &str,
        lease_until_ms: i64,
    ) -> StoreResult<Vec<StepKey>> {
        sqlx::query("UPDATE runs SET lease_until = $1 WHERE owner = $2 AND status = 'running'")
            .bind(lease_until_ms)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "UPDATE step_claims SET lease_until = $1 WHERE owner = $2 RETURNING asset_key, partition_key",
        )
        .bind(lease_until_ms)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let asset: String = r.try_get("asset_key")?;
                let partition: String = r.try_get("partition_key")?;
                StepKey::from_stored(&asset, &partition)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    pub(super) async fn release_claim_in(&self, step: &StepKey, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM step_claims WHERE asset_key = $1 AND partition_key = $2 AND owner = $3",
        )
        .bind(step.asset.as_str())
        .bind(step.partition_str())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn release_run_claims_in(&self, run_id: &RunId) -> StoreResult<()> {
        sqlx::query("DELETE FROM step_claims WHERE run_id = $1")
            .bind(run_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
