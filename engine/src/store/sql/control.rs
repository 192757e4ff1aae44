// The SQLite implementation of [`ControlStore`] and [`ControlReads`].

use super::*;
use crate::store::control::ControlReads;
use crate::store::control::{CancelOutcome, ControlStore};

#[async_trait]
impl ControlStore for Store {
    async fn cancel_run(&self, run_id: &RunId, why: &str) -> StoreResult<CancelOutcome> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        // Locked until the end of the transaction: a start racing this cancel waits for it, or this
        // cancel sees the run it started.
        let status: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT status FROM runs WHERE run_id = $1{FOR_UPDATE}"
        )))
        .bind(run_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let status = RunStatus::parse(
            &status.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?,
        )?;
        let outcome = match status {
            RunStatus::Queued | RunStatus::Waiting => {
                // No process holds it (`start_run` only takes queued or waiting runs, in its own
                // transaction): cancel it and its unstarted steps here.
                sqlx::query(
                    "UPDATE runs SET status = 'cancelled', finished_at = $1, error = $2,
                       cancel_requested_at = COALESCE(cancel_requested_at, $3)
                     WHERE run_id = $4",
                )
                .bind(&ts)
                .bind(why)
                .bind(&ts)
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE steps SET status = 'cancelled', finished_at = $1, reason = $2
                     WHERE run_id = $3 AND status IN ('pending', 'waiting')",
                )
                .bind(&ts)
                .bind(format!("{why} before the step started"))
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await?;
                let ev = NewEvent::of(run_id, None, why, &Event::RunCancelled {});
                insert_events(&mut tx, &ts, &[ev]).await?;
                CancelOutcome::Cancelled
            }
            RunStatus::Running => {
                sqlx::query(
                    "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, $1)
                     WHERE run_id = $2",
                )
                .bind(&ts)
                .bind(run_id.as_str())
                .execute(&mut *tx)
                .await?;
                let ev = NewEvent::of(
                    run_id,
                    None,
                    format!("{why}: cancel requested"),
                    &Event::Log {
                        level: "warn".into(),
                    },
                );
                insert_events(&mut tx, &ts, &[ev]).await?;
                CancelOutcome::Requested
            }
            ended => CancelOutcome::Ended(ended),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn cancel_requested(&self, run_id: &RunId) -> StoreResult<bool> {
        let at: Option<Option<String>> =
            sqlx::query_scalar("SELECT cancel_requested_at FROM runs WHERE run_id = $1")
                .bind(run_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(matches!(at, Some(Some(_))))
    }
}

#[async_trait]
impl ControlReads for Store {
    async fn run_progress(&self, runs: &[RunId]) -> StoreResult<HashMap<RunId, (usize, usize)>> {
        let mut out = HashMap::new();
        for chunk in runs.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let marks = marks.join(", ");
            let sql = format!(
                "SELECT run_id, COUNT(*) AS total,
                   SUM(CASE WHEN status IN ('pending', 'running') THEN 0 ELSE 1 END) AS ended
                 FROM steps WHERE run_id IN ({marks}) GROUP BY run_id"
            );
            // Only `$n` placeholders are spliced in; the ids are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q.bind(r.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                let total: i64 = row.try_get("total")?;
                let ended: i64 = row.try_get("ended")?;
                out.insert(
                    RunId(row.try_get("run_id")?),
                    (ended.max(0) as usize, total.max(0) as usize),
                );
            }
        }
        Ok(out)
    }
}
