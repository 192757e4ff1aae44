// Statements that run inside a caller's transaction: starting a step (sequence number, status, event),
// ending it (materialization, lineage, events) and taking a step claim.

use super::*;

pub(super) type Tx<'a> = sqlx::Transaction<'a, Db>;

/// Records a new run with its planned steps and a `run_queued` event.
pub(super) async fn insert_run(
    tx: &mut Tx<'_>,
    ts: &str,
    run: &RunRecord,
    steps: &[StepRecord],
) -> StoreResult<()> {
    let tags = (!run.tags.is_empty())
        .then(|| serde_json::to_string(&run.tags))
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("INSERT INTO runs (run_id, status, selection, force, created_at, pid, host, full_refresh, launched_by, tags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(run.run_id.as_str())
        .bind(run.status.as_str())
        .bind(&run.selection)
        .bind(run.force as i64)
        .bind(&run.created_at)
        .bind(run.pid)
        .bind(&run.host)
        .bind(run.full_refresh as i64)
        .bind(&run.launched_by)
        .bind(tags)
        .execute(&mut **tx)
        .await?;
    insert_steps(tx, &run.run_id, steps).await?;
    let ev = NewEvent::of(
        &run.run_id,
        None,
        format!("run queued with {} steps", steps.len()),
        &Event::RunQueued {
            selection: run.selection.clone(),
            force: run.force,
            steps: steps.len(),
        },
    );
    insert_events(tx, ts, &[ev]).await
}

/// Allocates the step's materialization sequence number and marks the step running, with its event.
///
/// The number is one past the asset partition's last (recorded as the last in `asset_sequences`), and
/// at least `floor_ms`, the store clock's time in milliseconds. The tables hold every
/// number ever committed as their `txn` versions, and a run store that was lost (a new, empty one) or
/// restored from an older copy no longer knows the last ones: the time floor keeps its numbers above
/// every number allocated before, so no table gets one twice and recovery cannot take an old commit
/// for a new attempt's (as long as the clock does not go back past the last allocation).
pub(super) async fn start_in(
    tx: &mut Tx<'_>,
    (ts, floor_ms): (&str, i64),
    run_id: &RunId,
    step_id: &str,
    attempt: i64,
    event: NewEvent,
) -> StoreResult<StartedAttempt> {
    if ONE_STATEMENT {
        let row = start_statement(
            &mut **tx,
            (ts, floor_ms),
            None,
            (run_id, step_id),
            attempt,
            false,
            &event,
        )
        .await?;
        return row
            .started
            .ok_or_else(|| StoreError::NotFound(format!("step '{step_id}' of run {run_id}")));
    }
    // One upsert allocates the number and returns the one before it: the row for the asset
    // (partition) is written (and, on Postgres, locked until this start commits) by the statement
    // that reads its last number, so no other start comes in between.
    let row: Option<(i64, i64)> = sqlx::query_as(
        "INSERT INTO asset_sequences (asset_key, partition_key, last_seq)
         SELECT asset_key, COALESCE(partition_key, ''), CASE WHEN $1 > 1 THEN $1 ELSE 1 END FROM steps
         WHERE run_id = $2 AND step_id = $3
         ON CONFLICT (asset_key, partition_key)
           DO UPDATE SET prev_seq = asset_sequences.last_seq,
             last_seq = CASE WHEN excluded.last_seq > asset_sequences.last_seq
               THEN excluded.last_seq ELSE asset_sequences.last_seq + 1 END
         RETURNING last_seq, prev_seq",
    )
    .bind(floor_ms)
    .bind(run_id.as_str())
    .bind(step_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (seq, previous) =
        row.ok_or_else(|| StoreError::NotFound(format!("step '{step_id}' of run {run_id}")))?;
    sqlx::query(
        "UPDATE steps SET status = 'running', attempt = $1, error = NULL,
           started_at = COALESCE(started_at, $2), seq = $3
         WHERE run_id = $4 AND step_id = $5",
    )
    .bind(attempt)
    .bind(ts)
    .bind(seq)
    .bind(run_id.as_str())
    .bind(step_id)
    .execute(&mut **tx)
    .await?;
    insert_events(tx, ts, &[event.with_field("seq", seq.into())]).await?;
    Ok(StartedAttempt { seq, previous })
}

/// Records how a step ended: its materialization and lineage (if it succeeded), its status and its events.
/// A step that was running releases its run's claim on the step key (a claim another run took over is
/// that run's and stays).
pub(super) async fn finish_in(
    tx: &mut Tx<'_>,
    ts: &str,
    run_id: &RunId,
    step_id: &str,
    mut outcome: StepOutcome,
) -> StoreResult<Option<i64>> {
    let mut mat_id = None;
    if let Some(m) = &outcome.materialization {
        lock_step_key(tx, &m.step_key()).await?;
        let upstream =
            serde_json::to_string(&m.upstream).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Records of a step key follow its sequence numbers: one that a newer attempt's record has
        // overtaken (a dead run's commit settled late) is not recorded, in the same statement as
        // the check, so no other writer comes in between.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO materializations (asset_key, partition_key, run_id, step_id, seq, delta_version, row_count,
             schema, data_version, code_version, upstream, metadata, created_at, published)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
             WHERE NOT EXISTS (SELECT 1 FROM materializations
                               WHERE asset_key = $1 AND partition_key IS NOT DISTINCT FROM $2 AND seq > $5)
             RETURNING id",
        )
        .bind(m.asset_key.as_str())
        .bind(m.partition_key.as_ref().map(|p| p.0.as_str()))
        .bind(m.run_id.as_str())
        .bind(&m.step_id)
        .bind(m.seq)
        .bind(m.delta_version)
        .bind(m.row_count)
        .bind(m.schema.to_string())
        .bind(&m.data_version)
        .bind(&m.code_version)
        .bind(upstream)
        .bind(m.metadata.to_string())
        .bind(ts)
        .bind(i64::from(m.published))
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(id) = id {
            insert_lineage(tx, id, &m.upstream).await?;
            super::checks::insert_check_results(tx, id, m, ts).await?;
            insert_column_lineage(tx, id, m).await?;
            mat_id = Some(id);
        }
    }
    let mut events = std::mem::take(&mut outcome.events);
    if let (None, Some(m)) = (mat_id, &outcome.materialization) {
        // Overtaken: its materialization event becomes a warning saying so.
        for e in events
            .iter_mut()
            .filter(|e| e.kind == EventKind::Materialization.as_str())
        {
            *e = NewEvent::of(
                run_id,
                Some(step_id),
                format!(
                    "{}: Delta version {} (sequence {}) is not recorded: a newer materialization \
                     of this step key is recorded already",
                    m.step_key(),
                    m.delta_version,
                    m.seq
                ),
                &spine_schemas::events::Event::Log {
                    level: "warn".into(),
                },
            );
        }
    }
    if let (Some(id), Some(e)) = (
        mat_id,
        events
            .iter_mut()
            .find(|e| e.kind == EventKind::Materialization.as_str()),
    ) {
        if let Some(serde_json::Value::Object(o)) = &mut e.data {
            o.insert("materialization_id".into(), id.into());
        }
    }
    if ONE_STATEMENT && one_run(&events) {
        finish_statement(&mut **tx, ts, (run_id, step_id), None, &outcome, &events).await?;
        return Ok(mat_id);
    }
    sqlx::query(
        "DELETE FROM step_claims WHERE run_id = $1 AND (asset_key, partition_key) IN
           (SELECT asset_key, COALESCE(partition_key, '') FROM steps
            WHERE run_id = $1 AND step_id = $2 AND status = 'running')",
    )
    .bind(run_id.as_str())
    .bind(step_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE steps SET status = $1, finished_at = $2, error = COALESCE($3, error), reason = $4, failure_class = $5 WHERE run_id = $6 AND step_id = $7")
        .bind(outcome.status.as_str())
        .bind(ts)
        .bind(outcome.error.as_deref().map(crate::redact::redact))
        .bind(&outcome.reason)
        .bind(&outcome.failure_class)
        .bind(run_id.as_str())
        .bind(step_id)
        .execute(&mut **tx)
        .await?;
    insert_events(tx, ts, &events).await?;
    Ok(mat_id)
}

/// Locks a step key's sequence row until the transaction ends, where a SELECT can lock (Postgres;
/// SQLite's writers already go one at a time): the step key's starts and records then happen one
/// at a time, so a record's check that no newer one exists holds until it commits.
async fn lock_step_key(tx: &mut Tx<'_>, step: &StepKey) -> StoreResult<()> {
    if FOR_UPDATE.is_empty() {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT last_seq FROM asset_sequences WHERE asset_key = $1 AND partition_key = $2{FOR_UPDATE}"
    )))
    .bind(step.asset.as_str())
    .bind(step.partition_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(())
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
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT(asset_key, partition_key) DO UPDATE SET
           run_id = excluded.run_id, owner = excluded.owner,
           lease_until = excluded.lease_until, claimed_at = excluded.claimed_at,
           limits = excluded.limits
         WHERE step_claims.lease_until < $6 OR step_claims.owner = excluded.owner
           OR step_claims.owner = $7
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

pub(super) async fn claim_holder<'c, E>(ex: E, step: &StepKey) -> StoreResult<Option<StepClaim>>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let row = sqlx::query(
        "SELECT run_id, owner, lease_until FROM step_claims WHERE asset_key = $1 AND partition_key = $2",
    )
    .bind(step.asset.as_str())
    .bind(step.partition_str())
    .fetch_optional(ex)
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

/// The column lineage of materialization `id` (one row per output column and upstream column), in
/// one statement per 4000 rows.
async fn insert_column_lineage(
    tx: &mut Tx<'_>,
    id: i64,
    m: &crate::store::NewMaterialization,
) -> StoreResult<()> {
    let mut rows = Vec::new();
    for (position, c) in m.columns.iter().enumerate() {
        if c.sources.is_empty() {
            rows.push((position as i64, c.column.as_str(), None));
        }
        for s in &c.sources {
            rows.push((position as i64, c.column.as_str(), Some(s)));
        }
    }
    for chunk in rows.chunks(4000) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO column_lineage (materialization_id, asset_key, column_name, position,
             upstream_key, upstream_column, how) ",
        );
        q.push_values(chunk, |mut b, (position, column, s)| {
            b.push_bind(id)
                .push_bind(m.asset_key.as_str())
                .push_bind(*column)
                .push_bind(*position)
                .push_bind(s.map(|s| s.asset.as_str()))
                .push_bind(s.map(|s| s.column.as_str()))
                .push_bind(s.map(|s| s.how.as_str()));
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
