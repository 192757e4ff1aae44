// The run half of the store (`RunStore`): runs, steps, events, materializations, claims.

use super::*;

#[async_trait]
impl RunStore for Store {
    fn with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn RunStore> {
        Arc::new(Store {
            pool: self.pool.clone(),
            clock,
        })
    }

    async fn create_run(&self, run: &RunRecord, steps: &[StepRecord]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        insert_run(&mut tx, &self.clock.stamp(), run, steps).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_run_status(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        event: NewEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let ts = self.clock.stamp();
        let q = match status {
            RunStatus::Running => "UPDATE runs SET status = $1, started_at = COALESCE(started_at, $2), error = $3 WHERE run_id = $4",
            s if s.is_terminal() => "UPDATE runs SET status = $1, finished_at = $2, error = $3 WHERE run_id = $4",
            _ => "UPDATE runs SET status = $1, created_at = COALESCE(created_at, $2), error = $3 WHERE run_id = $4",
        };
        let r = sqlx::query(q)
            .bind(status.as_str())
            .bind(&ts)
            .bind(error.map(crate::redact::redact))
            .bind(run_id.as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("run {run_id}")));
        }
        insert_events(&mut tx, &self.clock.stamp(), &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn start_run(
        &self,
        run_id: &RunId,
        lease: &RunLease,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(
            "UPDATE runs SET status = 'running', started_at = COALESCE(started_at, $1), pid = $2, host = $3,
               owner = $4, lease_until = $5, finished_at = NULL
             WHERE run_id = $6 AND status IN ('queued', 'waiting')",
        )
        .bind(self.clock.stamp())
        .bind(lease.pid)
        .bind(&lease.host)
        .bind(&lease.owner)
        .bind(lease.lease_until_ms)
        .bind(run_id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if taken {
            insert_events(&mut tx, &self.clock.stamp(), &[event]).await?;
        }
        tx.commit().await?;
        Ok(taken)
    }

    async fn take_over_run(&self, run: &RunRecord, lease: &RunLease) -> StoreResult<bool> {
        Ok(sqlx::query(
            "UPDATE runs SET pid = $1, host = $2, owner = $3, lease_until = $4
             WHERE run_id = $5 AND status = $6 AND pid IS NOT DISTINCT FROM $7 AND host IS NOT DISTINCT FROM $8 AND lease_until IS NOT DISTINCT FROM $9",
        )
        .bind(lease.pid)
        .bind(&lease.host)
        .bind(&lease.owner)
        .bind(lease.lease_until_ms)
        .bind(run.run_id.as_str())
        .bind(run.status.as_str())
        .bind(run.pid)
        .bind(&run.host)
        .bind(run.lease_until_ms)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    async fn signal_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        event: NewEvent,
    ) -> StoreResult<bool> {
        let step_id = step.to_string();
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE steps SET status = 'pending' WHERE run_id = $1 AND step_id = $2 AND status = 'waiting'",
        )
        .bind(run_id.as_str())
        .bind(&step_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            insert_events(&mut tx, &self.clock.stamp(), &[event]).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn start_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        attempt: i64,
        event: NewEvent,
    ) -> StoreResult<StartedAttempt> {
        let mut tx = self.write().await?;
        let seq = start_in(
            &mut tx,
            (&self.clock.stamp(), self.clock.now_ms()),
            run_id,
            &step.to_string(),
            attempt,
            event,
        )
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn start_claimed_step(
        &self,
        claim: &StepClaim,
        attempt: i64,
        event: NewEvent,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Result<StartedAttempt, StepClaim>> {
        if ONE_STATEMENT {
            let claim_part = (claim, now_ms, takeover_from);
            return match self
                .start_claimed_in_one(claim_part, attempt, false, &event)
                .await?
            {
                ClaimedStart::Started(started) => Ok(Ok(started)),
                ClaimedStart::Held(holder) => Ok(Err(holder)),
                ClaimedStart::Absent => Err(StoreError::NotFound(format!(
                    "step '{}' of run {}",
                    claim.step, claim.run_id
                ))),
            };
        }
        let mut tx = self.write().await?;
        if !upsert_claim(&mut tx, claim, now_ms, takeover_from).await? {
            let holder = claim_holder(&mut *tx, &claim.step).await?;
            tx.rollback().await?;
            return match holder {
                Some(h) => Ok(Err(h)),
                None => {
                    self.start_claimed_step(claim, attempt, event, now_ms, takeover_from)
                        .await
                }
            };
        }
        let seq = start_in(
            &mut tx,
            (&self.clock.stamp(), self.clock.now_ms()),
            &claim.run_id,
            &claim.step.to_string(),
            attempt,
            event,
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(seq))
    }

    async fn attempt_failed(
        &self,
        run_id: &RunId,
        step: &StepKey,
        error: &str,
        event: NewEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE steps SET error = $1 WHERE run_id = $2 AND step_id = $3")
            .bind(crate::redact::redact(error))
            .bind(run_id.as_str())
            .bind(step.to_string())
            .execute(&mut *tx)
            .await?;
        insert_events(&mut tx, &self.clock.stamp(), &[event]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_step(
        &self,
        run_id: &RunId,
        step: &StepKey,
        outcome: StepOutcome,
    ) -> StoreResult<Option<i64>> {
        // Nothing to record but the end and its events: one statement where the backend can.
        if self
            .finish_in_one((run_id, step), None, &outcome)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let mut tx = self.write().await?;
        let step_id = step.to_string();
        let mat_id = finish_in(&mut tx, &self.clock.stamp(), run_id, &step_id, outcome).await?;
        tx.commit().await?;
        Ok(mat_id)
    }

    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        insert_events(&mut tx, &self.clock.stamp(), events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_step(
        &self,
        claim: &StepClaim,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<ClaimOutcome> {
        self.claim_step_in(claim, now_ms, takeover_from).await
    }

    async fn renew_claim(
        &self,
        step: &StepKey,
        owner: &str,
        lease_until_ms: i64,
    ) -> StoreResult<bool> {
        self.renew_claim_in(step, owner, lease_until_ms).await
    }

    async fn renew_claims(&self, owner: &str, lease_until_ms: i64) -> StoreResult<Vec<StepKey>> {
        self.renew_claims_in(owner, lease_until_ms).await
    }

    async fn release_claim(&self, step: &StepKey, owner: &str) -> StoreResult<()> {
        self.release_claim_in(step, owner).await
    }

    async fn release_run_claims(&self, run_id: &RunId) -> StoreResult<()> {
        self.release_run_claims_in(run_id).await
    }
}

#[async_trait]
impl RunReads for Store {
    async fn list_runs(&self, limit: i64) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query("SELECT * FROM runs ORDER BY created_at DESC, run_id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn waiting_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let rows =
            sqlx::query("SELECT * FROM runs WHERE status = 'waiting' ORDER BY created_at, run_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn get_run(&self, id_or_prefix: &str) -> StoreResult<RunRecord> {
        let rows = sqlx::query(
            "SELECT * FROM runs WHERE run_id = $1 OR substr(run_id, 1, length($1)) = $1 \
             ORDER BY run_id LIMIT 11",
        )
        .bind(id_or_prefix)
        .fetch_all(&self.pool)
        .await?;
        let runs = rows
            .iter()
            .map(run_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        one_by_prefix(runs, id_or_prefix, |r| r.run_id.as_str()).map_err(|runs| {
            StoreError::UnknownRun {
                prefix: id_or_prefix.to_string(),
                candidates: runs
                    .iter()
                    .map(|r| format!("{}  {}  {}", r.run_id, r.status, r.created_at))
                    .collect(),
            }
        })
    }

    async fn short_run_id(&self, run_id: &RunId) -> StoreResult<String> {
        let id = run_id.as_str();
        let neighbours: Vec<String> = sqlx::query_scalar(
            "SELECT * FROM (SELECT run_id FROM runs WHERE run_id < $1 ORDER BY run_id DESC LIMIT 1) b \
             UNION ALL SELECT * FROM (SELECT run_id FROM runs WHERE run_id > $1 ORDER BY run_id LIMIT 1) a",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(super::unique_prefix(id, &neighbours).to_string())
    }

    async fn steps(&self, run_id: &RunId) -> StoreResult<Vec<StepRecord>> {
        let rows = sqlx::query("SELECT * FROM steps WHERE run_id = $1 ORDER BY position")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn events_page(
        &self,
        run_id: &RunId,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        let rows =
            sqlx::query("SELECT * FROM events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(run_id.as_str())
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_since(&self, after_id: i64, limit: i64) -> StoreResult<Vec<EventRecord>> {
        let rows = sqlx::query("SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn latest_materializations(&self) -> StoreResult<HashMap<StepKey, Materialization>> {
        let rows = sqlx::query(
            "SELECT * FROM materializations WHERE id IN
             (SELECT MAX(id) FROM materializations WHERE published = 1 GROUP BY asset_key, partition_key)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| mat_from_row(r).map(|m| (m.m.step_key(), m)))
            .collect()
    }

    async fn latest_materialization(&self, step: &StepKey) -> StoreResult<Option<Materialization>> {
        let row = sqlx::query(
            "SELECT * FROM materializations WHERE asset_key = $1 AND partition_key IS NOT DISTINCT FROM $2 AND published = 1
             ORDER BY id DESC LIMIT 1",
        )
        .bind(step.asset.as_str())
        .bind(step.partition.as_ref().map(|p| p.0.as_str()))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mat_from_row).transpose()
    }

    async fn materializations(
        &self,
        key: &AssetKey,
        limit: i64,
    ) -> StoreResult<Vec<Materialization>> {
        let rows = sqlx::query(
            "SELECT * FROM materializations WHERE asset_key = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(key.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mat_from_row).collect()
    }

    async fn active_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let rows =
            sqlx::query("SELECT * FROM runs WHERE status IN ('queued', 'running') ORDER BY run_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn dump_table(
        &self,
        table: &str,
    ) -> StoreResult<Vec<serde_json::Map<String, serde_json::Value>>> {
        use sqlx::{Column, TypeInfo, ValueRef};
        let q = match table {
            "runs" => "SELECT * FROM runs",
            "steps" => "SELECT * FROM steps",
            "events" => "SELECT * FROM events",
            "materializations" => "SELECT * FROM materializations",
            "lineage" => "SELECT * FROM lineage",
            "backfills" => "SELECT * FROM backfills",
            "backfill_runs" => "SELECT * FROM backfill_runs",
            "schedule_ticks" => "SELECT * FROM schedule_ticks",
            "check_results" => "SELECT * FROM check_results",
            "publications" => "SELECT * FROM publications",
            "column_lineage" => "SELECT * FROM column_lineage",
            other => return Err(StoreError::NotFound(format!("store table '{other}'"))),
        };
        let rows = sqlx::query(q).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut o = serde_json::Map::new();
            for (i, c) in r.columns().iter().enumerate() {
                // Postgres spells out SQLite's implicit row number; it is not part of the table.
                if c.name() == "rowid" {
                    continue;
                }
                let raw = r.try_get_raw(i)?;
                let v = if raw.is_null() {
                    serde_json::Value::Null
                } else {
                    match raw.type_info().name() {
                        "INTEGER" | "INT8" => r.try_get::<i64, _>(i)?.into(),
                        "REAL" | "FLOAT8" => r.try_get::<f64, _>(i)?.into(),
                        _ => r.try_get::<String, _>(i)?.into(),
                    }
                };
                o.insert(c.name().to_string(), v);
            }
            out.push(o);
        }
        Ok(out)
    }
}

fn event_from_row(r: &DbRow) -> StoreResult<EventRecord> {
    let data: Option<String> = r.try_get("data")?;
    Ok(EventRecord {
        id: r.try_get("id")?,
        ts: r.try_get("ts")?,
        event: NewEvent {
            run_id: r.try_get("run_id")?,
            step_id: r.try_get("step_id")?,
            kind: r.try_get("kind")?,
            level: r.try_get("level")?,
            message: r.try_get("message")?,
            data: data.as_deref().map(json_from).transpose()?,
        },
    })
}
