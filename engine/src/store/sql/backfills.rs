// The SQLite implementation of [`BackfillStore`] and [`BackfillReads`].

use super::*;
use crate::key::BackfillId;
use crate::store::backfills::BackfillReads;
use crate::store::backfills::{
    BackfillRecord, BackfillStep, BackfillStore, LatestOutcome, PlannedRun,
};

fn backfill_from_row(r: &DbRow) -> StoreResult<BackfillRecord> {
    Ok(BackfillRecord {
        backfill_id: BackfillId(r.try_get("backfill_id")?),
        selection: r.try_get("selection")?,
        partitions: r.try_get("partitions")?,
        filter: r.try_get("filter")?,
        per_run: r.try_get("per_run")?,
        concurrency: r.try_get("concurrency")?,
        steps: r.try_get("steps")?,
        created_at: r.try_get("created_at")?,
        cancelled_at: r.try_get("cancelled_at")?,
    })
}

async fn link_run(
    tx: &mut Tx<'_>,
    backfill_id: &BackfillId,
    chunk: i64,
    run_id: &RunId,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO backfill_runs (backfill_id, chunk, attempt, run_id)
         VALUES ($1, $2, (SELECT COALESCE(MAX(attempt) + 1, 0) FROM backfill_runs
                          WHERE backfill_id = $1 AND chunk = $2), $3)",
    )
    .bind(backfill_id.as_str())
    .bind(chunk)
    .bind(run_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl BackfillStore for Store {
    async fn create_backfill(
        &self,
        backfill: &BackfillRecord,
        runs: &[PlannedRun],
    ) -> StoreResult<()> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO backfills (backfill_id, selection, partitions, filter, per_run, concurrency, steps, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(backfill.backfill_id.as_str())
        .bind(&backfill.selection)
        .bind(&backfill.partitions)
        .bind(&backfill.filter)
        .bind(backfill.per_run)
        .bind(backfill.concurrency)
        .bind(backfill.steps)
        .bind(&backfill.created_at)
        .execute(&mut *tx)
        .await?;
        for (chunk, planned) in runs.iter().enumerate() {
            insert_run(&mut tx, &ts, &planned.run, &planned.steps).await?;
            link_run(
                &mut tx,
                &backfill.backfill_id,
                chunk as i64,
                &planned.run.run_id,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_backfill_run(
        &self,
        backfill_id: &BackfillId,
        chunk: i64,
        planned: &PlannedRun,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        insert_run(&mut tx, &self.clock.stamp(), &planned.run, &planned.steps).await?;
        link_run(&mut tx, backfill_id, chunk, &planned.run.run_id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_backfills(&self, limit: i64) -> StoreResult<Vec<BackfillRecord>> {
        sqlx::query("SELECT * FROM backfills ORDER BY backfill_id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(backfill_from_row)
            .collect()
    }

    async fn get_backfill(&self, id_or_prefix: &str) -> StoreResult<BackfillRecord> {
        let rows = sqlx::query(
            "SELECT * FROM backfills WHERE backfill_id = $1 OR substr(backfill_id, 1, length($1)) = $1 \
             ORDER BY backfill_id LIMIT 11",
        )
        .bind(id_or_prefix)
        .fetch_all(&self.pool)
        .await?;
        let found = rows
            .iter()
            .map(backfill_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        one_by_prefix(found, id_or_prefix, |b| b.backfill_id.as_str()).map_err(|found| {
            StoreError::UnknownBackfill {
                prefix: id_or_prefix.to_string(),
                candidates: found
                    .iter()
                    .map(|b| format!("{}  {}", b.backfill_id, b.created_at))
                    .collect(),
            }
        })
    }

    async fn backfill_runs(
        &self,
        backfill_id: &BackfillId,
    ) -> StoreResult<Vec<(i64, i64, RunRecord)>> {
        let rows = sqlx::query(
            "SELECT b.chunk, b.attempt, r.* FROM backfill_runs b JOIN runs r ON r.run_id = b.run_id
             WHERE b.backfill_id = $1 ORDER BY b.chunk, b.attempt",
        )
        .bind(backfill_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("chunk")?, r.try_get("attempt")?, run_from_row(r)?)))
            .collect()
    }

    async fn cancel_backfill(&self, backfill_id: &BackfillId) -> StoreResult<Vec<RunId>> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE backfills SET cancelled_at = COALESCE(cancelled_at, $1) WHERE backfill_id = $2",
        )
        .bind(&ts)
        .bind(backfill_id.as_str())
        .execute(&mut *tx)
        .await?;
        let cancelled: Vec<String> = sqlx::query_scalar(
            "UPDATE runs SET status = 'cancelled', finished_at = $1, error = 'backfill cancelled'
             WHERE status = 'queued'
               AND run_id IN (SELECT run_id FROM backfill_runs WHERE backfill_id = $2)
             RETURNING run_id",
        )
        .bind(&ts)
        .bind(backfill_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let runs: Vec<RunId> = cancelled.into_iter().map(RunId).collect();
        let events: Vec<NewEvent> = runs
            .iter()
            .map(|r| NewEvent::of(r, None, "backfill cancelled", &Event::RunCancelled {}))
            .collect();
        insert_events(&mut tx, &ts, &events).await?;
        tx.commit().await?;
        Ok(runs)
    }

    async fn uncancel_backfill(&self, backfill_id: &BackfillId) -> StoreResult<()> {
        sqlx::query("UPDATE backfills SET cancelled_at = NULL WHERE backfill_id = $1")
            .bind(backfill_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl BackfillReads for Store {
    async fn backfill_steps(&self, backfill_id: &BackfillId) -> StoreResult<Vec<BackfillStep>> {
        let rows = sqlx::query(
            "SELECT b.chunk, b.attempt, s.run_id, s.asset_key, s.partition_key, s.status, s.error
             FROM backfill_runs b JOIN steps s ON s.run_id = b.run_id
             WHERE b.backfill_id = $1 ORDER BY b.chunk, b.attempt, s.position",
        )
        .bind(backfill_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BackfillStep {
                    chunk: r.try_get("chunk")?,
                    attempt: r.try_get("attempt")?,
                    run_id: RunId(r.try_get("run_id")?),
                    step: StepKey {
                        asset: key_from(r.try_get("asset_key")?)?,
                        partition: r
                            .try_get::<Option<String>, _>("partition_key")?
                            .map(PartitionKey),
                    },
                    status: StepStatus::parse(r.try_get("status")?)?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    async fn latest_step_outcomes(
        &self,
        asset: Option<&AssetKey>,
    ) -> StoreResult<HashMap<StepKey, LatestOutcome>> {
        // Steps that ended, oldest end first, so the last one written per key is its latest.
        let rows = sqlx::query(
            "SELECT asset_key, partition_key, status, finished_at FROM steps
             WHERE status NOT IN ('pending', 'running') AND finished_at IS NOT NULL
               AND ($1 IS NULL OR asset_key = $1)
             ORDER BY finished_at, rowid",
        )
        .bind(asset.map(|a| a.as_str()))
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for r in &rows {
            let step = StepKey {
                asset: key_from(r.try_get("asset_key")?)?,
                partition: r
                    .try_get::<Option<String>, _>("partition_key")?
                    .map(PartitionKey),
            };
            let outcome = LatestOutcome {
                status: StepStatus::parse(r.try_get("status")?)?,
                finished_at: r.try_get("finished_at")?,
            };
            out.insert(step, outcome);
        }
        Ok(out)
    }
}
