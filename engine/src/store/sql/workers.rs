// The worker protocol: the bodies of [`WorkerStore`], each a transaction guarded by the state its
// caller saw (see `store::workers`).

use super::*;
use crate::store::workers::{ClaimLimits, Claimed, WorkerStore};

/// The step's status, attempt and sequence number, locked (where a SELECT can lock) until the end of
/// the transaction.
async fn step_state(
    tx: &mut Tx<'_>,
    run_id: &RunId,
    step: &StepKey,
) -> StoreResult<Option<(StepStatus, i64, Option<i64>)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT status, attempt, seq FROM steps WHERE run_id = $1 AND step_id = $2{FOR_UPDATE}"
    )))
    .bind(run_id.as_str())
    .bind(step.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        let status: String = r.try_get("status")?;
        Ok((
            StepStatus::parse(&status)?,
            r.try_get("attempt")?,
            r.try_get("seq")?,
        ))
    })
    .transpose()
}

/// Takes `claim` in `tx`; the holder when another owner holds it (`None`: released meanwhile).
async fn take_claim(
    tx: &mut Tx<'_>,
    claim: &StepClaim,
    now_ms: i64,
    takeover_from: Option<&str>,
) -> StoreResult<Result<(), Option<StepClaim>>> {
    if upsert_claim(tx, claim, now_ms, takeover_from).await? {
        return Ok(Ok(()));
    }
    Ok(Err(claim_holder(&mut **tx, &claim.step).await?))
}

/// The first of `limits` that as many live claims (other than `claim`'s step key's) carry as it
/// allows. Each limit's count is serialized: on Postgres by a transaction-level advisory lock per key
/// (taken in key order), on SQLite by the write lock every transaction takes first.
async fn at_limit(
    tx: &mut Tx<'_>,
    claim: &StepClaim,
    limits: &ClaimLimits,
    now_ms: i64,
) -> StoreResult<Option<String>> {
    for (key, max) in &limits.0 {
        xact_lock(tx, &format!("limit:{key}")).await?;
        let pattern = format!(
            "%,{},%",
            key.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM step_claims WHERE limits LIKE $1 ESCAPE '\\' AND lease_until >= $2
               AND NOT (asset_key = $3 AND partition_key = $4)",
        )
        .bind(pattern)
        .bind(now_ms)
        .bind(claim.step.asset.as_str())
        .bind(claim.step.partition_str())
        .fetch_one(&mut **tx)
        .await?;
        if n >= *max {
            return Ok(Some(key.clone()));
        }
    }
    Ok(None)
}

#[async_trait]
impl WorkerStore for Store {
    async fn worker_runs(&self, owner: &str) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM runs r WHERE r.status = 'queued'
               OR (r.status = 'running' AND r.owner = $1)
               OR (r.status = 'waiting' AND EXISTS
                    (SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.status = 'pending' AND s.attempt > 0))
             ORDER BY r.created_at, r.run_id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn run_claims(&self, run_id: &RunId) -> StoreResult<Vec<StepClaim>> {
        let rows = sqlx::query(
            "SELECT asset_key, partition_key, owner, lease_until FROM step_claims WHERE run_id = $1",
        )
        .bind(run_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let asset: String = r.try_get("asset_key")?;
                let partition: String = r.try_get("partition_key")?;
                Ok(StepClaim {
                    step: StepKey::from_stored(&asset, &partition)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    run_id: run_id.clone(),
                    owner: r.try_get("owner")?,
                    lease_until_ms: r.try_get("lease_until")?,
                })
            })
            .collect()
    }

    async fn start_ready_step(
        &self,
        claim: &StepClaim,
        limits: &ClaimLimits,
        attempt: i64,
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Claimed<StartedAttempt>> {
        if ONE_STATEMENT && limits.0.is_empty() {
            // The readiness check, the claim and the start in one statement: one round trip.
            let claim_part = (claim, now_ms, takeover_from);
            return Ok(
                match self
                    .start_claimed_in_one(claim_part, attempt, true, &event)
                    .await?
                {
                    ClaimedStart::Started(started) => Claimed::Got(started),
                    ClaimedStart::Held(holder) => Claimed::Held(holder),
                    ClaimedStart::Absent => Claimed::Moved,
                },
            );
        }
        loop {
            let mut tx = self.write().await?;
            let ready = match step_state(&mut tx, &claim.run_id, &claim.step).await? {
                Some((StepStatus::Pending, _, _)) => true,
                Some((StepStatus::Running, a, _)) => a == attempt - 1,
                _ => false,
            };
            if !ready {
                tx.rollback().await?;
                return Ok(Claimed::Moved);
            }
            if let Some(key) = at_limit(&mut tx, claim, limits, now_ms).await? {
                tx.rollback().await?;
                return Ok(Claimed::Limited(key));
            }
            match take_claim(&mut tx, claim, now_ms, takeover_from).await? {
                Ok(()) if !limits.0.is_empty() => {
                    sqlx::query(
                        "UPDATE step_claims SET limits = $1 WHERE asset_key = $2 AND partition_key = $3",
                    )
                    .bind(limits.listed())
                    .bind(claim.step.asset.as_str())
                    .bind(claim.step.partition_str())
                    .execute(&mut *tx)
                    .await?;
                }
                Ok(()) => {}
                Err(holder) => {
                    tx.rollback().await?;
                    match holder {
                        Some(h) => return Ok(Claimed::Held(h)),
                        // Released between the two statements: try again.
                        None => continue,
                    }
                }
            }
            let started = start_in(
                &mut tx,
                (&self.clock.stamp(), self.clock.now_ms()),
                &claim.run_id,
                &claim.step.to_string(),
                attempt,
                event,
            )
            .await?;
            tx.commit().await?;
            return Ok(Claimed::Got(started));
        }
    }

    async fn reclaim_step(
        &self,
        claim: &StepClaim,
        (attempt, seq): (i64, i64),
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Claimed<()>> {
        loop {
            let mut tx = self.write().await?;
            let same = step_state(&mut tx, &claim.run_id, &claim.step).await?
                == Some((StepStatus::Running, attempt, Some(seq)));
            if !same {
                tx.rollback().await?;
                return Ok(Claimed::Moved);
            }
            if let Err(holder) = take_claim(&mut tx, claim, now_ms, takeover_from).await? {
                tx.rollback().await?;
                match holder {
                    Some(h) => return Ok(Claimed::Held(h)),
                    None => continue,
                }
            }
            insert_events(&mut tx, &self.clock.stamp(), &[event]).await?;
            tx.commit().await?;
            return Ok(Claimed::Got(()));
        }
    }

    async fn finish_claimed_step(
        &self,
        owner: &str,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<Option<Option<i64>>> {
        // The claim check and the end in one statement where the backend can.
        if let Some(held) = self
            .finish_in_one((run_id, step), Some(owner), &outcome)
            .await?
        {
            return Ok(held.then_some(None));
        }
        let mut tx = self.write().await?;
        let holder: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT owner FROM step_claims WHERE asset_key = $1 AND partition_key = $2{FOR_UPDATE}"
        )))
        .bind(step.asset.as_str())
        .bind(step.partition_str())
        .fetch_optional(&mut *tx)
        .await?;
        if holder.as_deref() != Some(owner) {
            tx.rollback().await?;
            return Ok(None);
        }
        let id = finish_in(
            &mut tx,
            &self.clock.stamp(),
            run_id,
            &step.to_string(),
            outcome,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    async fn end_pending_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let pending = matches!(
            step_state(&mut tx, run_id, step).await?,
            Some((StepStatus::Pending, _, _))
        );
        if !pending {
            tx.rollback().await?;
            return Ok(false);
        }
        finish_in(
            &mut tx,
            &self.clock.stamp(),
            run_id,
            &step.to_string(),
            outcome,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn end_run(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let finished = status.is_terminal().then_some(ts.as_str());
        let moved = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2, error = $3
             WHERE run_id = $4 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(finished)
        .bind(error.map(crate::redact::redact))
        .bind(run_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            insert_events(&mut tx, &ts, &[event]).await?;
        }
        tx.commit().await?;
        Ok(moved)
    }
}
