//! Statements that run inside a caller's transaction: starting a step (sequence number, status, event)
//! and taking a step claim.

use super::*;

pub(super) type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Allocates the step's materialization sequence number and marks it running, with its event.
pub(super) async fn start_in(
    tx: &mut Tx<'_>,
    run_id: &RunId,
    step_id: &str,
    asset: &AssetKey,
    attempt: i64,
    event: NewEvent,
) -> StoreResult<i64> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO asset_sequences (asset_key, partition_key, last_seq) VALUES (?, '', 1)
         ON CONFLICT(asset_key, partition_key) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
    )
    .bind(asset.as_str())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE steps SET status = 'running', attempt = ?, seq = ?, started_at = COALESCE(started_at, ?), error = NULL
         WHERE run_id = ? AND step_id = ?",
    )
    .bind(attempt)
    .bind(seq)
    .bind(now())
    .bind(run_id.as_str())
    .bind(step_id)
    .execute(&mut **tx)
    .await?;
    insert_events(tx, &[event.with_field("seq", seq.into())]).await?;
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
