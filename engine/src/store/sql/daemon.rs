// The SQLite implementation of [`DaemonStore`] and [`DaemonReads`].

use super::*;
use crate::store::daemon::DaemonReads;
use crate::store::daemon::{DaemonLock, DaemonStore, TickRecord};

fn tick_from_row(r: &DbRow) -> StoreResult<TickRecord> {
    Ok(TickRecord {
        schedule: r.try_get("schedule")?,
        tick_at: r.try_get("tick_at")?,
        status: r.try_get("status")?,
        run_id: r.try_get::<Option<String>, _>("run_id")?.map(RunId),
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
    })
}

fn lock_from_row(r: &DbRow) -> StoreResult<DaemonLock> {
    Ok(DaemonLock {
        owner: r.try_get("owner")?,
        pid: r.try_get("pid")?,
        host: r.try_get("host")?,
        lease_until_ms: r.try_get("lease_until")?,
    })
}

#[async_trait]
impl DaemonStore for Store {
    async fn record_tick(&self, tick: &TickRecord, run: Option<&PlannedRun>) -> StoreResult<bool> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO schedule_ticks (schedule, tick_at, status, run_id, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (schedule, tick_at) DO NOTHING",
        )
        .bind(&tick.schedule)
        .bind(&tick.tick_at)
        .bind(&tick.status)
        .bind(tick.run_id.as_ref().map(|r| r.as_str()))
        .bind(&tick.reason)
        .bind(&ts)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        if let Some(p) = run {
            insert_run(&mut tx, &ts, &p.run, &p.steps).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn take_daemon_lock(
        &self,
        lock: &DaemonLock,
        now_ms: i64,
        takeover_from: Option<&str>,
    ) -> StoreResult<Result<(), DaemonLock>> {
        let mut tx = self.write().await?;
        let granted: Option<String> = sqlx::query_scalar(
            "INSERT INTO daemon_lock (id, owner, pid, host, lease_until) VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
               host = excluded.host, lease_until = excluded.lease_until
             WHERE daemon_lock.lease_until < $5 OR daemon_lock.owner = excluded.owner
               OR daemon_lock.owner = $6
             RETURNING owner",
        )
        .bind(&lock.owner)
        .bind(lock.pid)
        .bind(&lock.host)
        .bind(lock.lease_until_ms)
        .bind(now_ms)
        .bind(takeover_from)
        .fetch_optional(&mut *tx)
        .await?;
        let out = match granted {
            Some(_) => Ok(()),
            None => {
                let row = sqlx::query("SELECT * FROM daemon_lock WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                Err(lock_from_row(&row)?)
            }
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn release_daemon_lock(&self, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM daemon_lock WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn daemon_lock(&self) -> StoreResult<Option<DaemonLock>> {
        sqlx::query("SELECT * FROM daemon_lock WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| lock_from_row(&r))
            .transpose()
    }
}

#[async_trait]
impl DaemonReads for Store {
    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<String>> {
        Ok(
            // A fired tick (`assets schedules fire`) is not the schedule's cursor.
            sqlx::query_scalar(
                "SELECT MAX(tick_at) FROM schedule_ticks WHERE schedule = $1 AND status <> 'fired'",
            )
            .bind(schedule)
            .fetch_one(&self.pool)
            .await?,
        )
    }

    async fn ticks(&self, schedule: Option<&str>, limit: i64) -> StoreResult<Vec<TickRecord>> {
        sqlx::query(
            "SELECT * FROM schedule_ticks WHERE $1 IS NULL OR schedule = $1
             ORDER BY tick_at DESC, schedule LIMIT $2",
        )
        .bind(schedule)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(tick_from_row)
        .collect()
    }
}
