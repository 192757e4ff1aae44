//! Statements that run inside a caller's transaction: starting a step (sequence number, status, event)
//! and taking a step claim.

use super::*;

pub(super) type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Allocates the step's materialization sequence number (one past the asset partition's last; the
/// `steps_sequence` trigger records it as the last) and marks the step running, with its event.
pub(super) async fn start_in(
    tx: &mut Tx<'_>,
    ts: &str,
    run_id: &RunId,
    step_id: &str,
    attempt: i64,
    event: NewEvent,
) -> StoreResult<i64> {
    let seq: Option<i64> = sqlx::query_scalar(
        "UPDATE steps SET status = 'running', attempt = ?, error = NULL,
           started_at = COALESCE(started_at, ?),
           seq = 1 + COALESCE((SELECT last_seq FROM asset_sequences s
                               WHERE s.asset_key = steps.asset_key
                                 AND s.partition_key = COALESCE(steps.partition_key, '')), 0)
         WHERE run_id = ? AND step_id = ? RETURNING seq",
    )
    .bind(attempt)
    .bind(ts)
    .bind(run_id.as_str())
    .bind(step_id)
    .fetch_optional(&mut **tx)
    .await?;
    let seq =
        seq.ok_or_else(|| StoreError::NotFound(format!("step '{step_id}' of run {run_id}")))?;
    insert_events(tx, ts, &[event.with_field("seq", seq.into())]).await?;
    Ok(seq)
}

/// Takes (or renews) the claim when it is free, expired, already ours, or held by `takeover_from`.
/// One statement, so the check and the write are atomic across processes.
pub(super) async fn upsert_claim(
    tx: &mut Tx<'_>,
    claim: &StepClaim,
    now_ms: i64,
    takeover_from: Option<&str>,
) -> StoreResult<bool> {
    let granted: Option<String> = sqlx::query_scalar(
        "INSERT INTO step_claims (asset_key, partition_key, run_id, owner, lease_until, claimed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(asset_key, partition_key) DO UPDATE SET
           run_id = excluded.run_id, owner = excluded.owner,
           lease_until = excluded.lease_until, claimed_at = excluded.claimed_at
         WHERE step_claims.lease_until < ?6 OR step_claims.owner = excluded.owner
           OR step_claims.owner = ?7
         RETURNING owner",
    )
    .bind(claim.step.asset.as_str())
    .bind(claim.step.partition_str())
    .bind(claim.run_id.as_str())
    .bind(&claim.owner)
    .bind(claim.lease_until_ms)
    .bind(now_ms)
    .bind(takeover_from)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(granted.is_some())
}

pub(super) async fn claim_holder(
    tx: &mut Tx<'_>,
    step: &StepKey,
) -> StoreResult<Option<StepClaim>> {
    let row = sqlx::query(
        "SELECT run_id, owner, lease_until FROM step_claims WHERE asset_key = ? AND partition_key = ?",
    )
    .bind(step.asset.as_str())
    .bind(step.partition_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| {
        Ok(StepClaim {
            step: step.clone(),
            run_id: RunId(r.try_get("run_id")?),
            owner: r.try_get("owner")?,
            lease_until_ms: r.try_get("lease_until")?,
        })
    })
    .transpose()
}
