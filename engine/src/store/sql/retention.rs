// The SQL implementation of [`RetentionStore`] (see `store/retention.rs` for what is kept).

use super::*;
use crate::store::retention::{PruneReport, RetentionStore};

/// Ended step states (as `latest_step_outcomes` counts them).
const ENDED: &str = "status NOT IN ('pending', 'running')";

/// Materializations created before $1 that nothing keeps (before the upstream rule).
fn unkept_materializations() -> String {
    "CREATE TEMP TABLE gc_mats AS SELECT m.id FROM materializations m
     WHERE m.created_at < $1
       AND m.id NOT IN (SELECT MAX(p.id) FROM materializations p WHERE p.published = 1
                        GROUP BY p.asset_key, p.partition_key)
       AND m.id < COALESCE((SELECT MAX(p.id) FROM materializations p
                            WHERE p.asset_key = m.asset_key
                              AND p.partition_key IS NOT DISTINCT FROM m.partition_key
                              AND p.published = 1), 0)"
        .to_string()
}

/// Ended runs finished before $1 that hold nothing kept.
fn prunable_runs() -> String {
    format!(
        "CREATE TEMP TABLE gc_runs AS SELECT r.run_id FROM runs r
         WHERE r.status IN ('succeeded', 'failed', 'cancelled') AND r.finished_at < $1
           AND NOT EXISTS (SELECT 1 FROM materializations m
                           WHERE m.run_id = r.run_id AND m.id NOT IN (SELECT id FROM gc_mats))
           AND NOT EXISTS (SELECT 1 FROM backfill_runs b WHERE b.run_id = r.run_id)
           AND NOT EXISTS (SELECT 1 FROM schedule_ticks t WHERE t.run_id = r.run_id
                           AND t.tick_at = (SELECT MAX(u.tick_at) FROM schedule_ticks u
                                            WHERE u.schedule = t.schedule))
           AND NOT EXISTS (SELECT 1 FROM steps s
                           WHERE s.run_id = r.run_id AND s.finished_at IS NOT NULL AND s.{ENDED}
                             AND NOT EXISTS (SELECT 1 FROM steps n
                                             WHERE n.asset_key = s.asset_key
                                               AND n.partition_key IS NOT DISTINCT FROM s.partition_key
                                               AND n.finished_at IS NOT NULL AND n.{ENDED}
                                               AND n.finished_at > s.finished_at))"
    )
}

impl Store {
    async fn prune_in(&self, tx: &mut Tx<'_>, before: &str) -> StoreResult<PruneReport> {
        let run = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in ["gc_mats", "gc_runs"] {
            run(format!("DROP TABLE IF EXISTS {t}"))
                .execute(&mut **tx)
                .await?;
        }
        run(unkept_materializations())
            .bind(before)
            .execute(&mut **tx)
            .await?;
        // What a kept materialization read is kept.
        sqlx::query(
            "DELETE FROM gc_mats WHERE id IN
               (SELECT l.upstream_materialization_id FROM lineage l
                WHERE l.upstream_materialization_id IS NOT NULL
                  AND l.materialization_id NOT IN (SELECT id FROM gc_mats))",
        )
        .execute(&mut **tx)
        .await?;
        run(prunable_runs()).bind(before).execute(&mut **tx).await?;
        let events = sqlx::query(
            "DELETE FROM events WHERE run_id IN
               (SELECT run_id FROM runs WHERE status IN ('succeeded', 'failed', 'cancelled')
                  AND finished_at < $1)",
        )
        .bind(before)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM run_spend WHERE run_id IN (SELECT run_id FROM gc_runs)")
            .execute(&mut **tx)
            .await?;
        let steps = sqlx::query("DELETE FROM steps WHERE run_id IN (SELECT run_id FROM gc_runs)")
            .execute(&mut **tx)
            .await?
            .rows_affected();
        for t in ["check_results", "column_lineage", "publications", "lineage"] {
            run(format!(
                "DELETE FROM {t} WHERE materialization_id IN (SELECT id FROM gc_mats)"
            ))
            .execute(&mut **tx)
            .await?;
        }
        let materializations =
            sqlx::query("DELETE FROM materializations WHERE id IN (SELECT id FROM gc_mats)")
                .execute(&mut **tx)
                .await?
                .rows_affected();
        let runs = sqlx::query("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM gc_runs)")
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // Ticks: each schedule's latest, and its latest not fired by hand (its cursor), stay.
        let ticks = sqlx::query(
            "DELETE FROM schedule_ticks WHERE created_at < $1
               AND tick_at < (SELECT MAX(u.tick_at) FROM schedule_ticks u
                              WHERE u.schedule = schedule_ticks.schedule)
               AND tick_at IS DISTINCT FROM (SELECT MAX(u.tick_at) FROM schedule_ticks u
                                             WHERE u.schedule = schedule_ticks.schedule
                                               AND u.status <> 'fired')",
        )
        .bind(before)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        for t in ["gc_mats", "gc_runs"] {
            run(format!("DROP TABLE {t}")).execute(&mut **tx).await?;
        }
        // Agent checkpoints only resume recent work (a crashed or parked step's next run).
        let checkpoints = sqlx::query("DELETE FROM agent_checkpoints WHERE created_at < $1")
            .bind(before)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        Ok(PruneReport {
            events,
            steps,
            runs,
            materializations,
            ticks,
            checkpoints,
        })
    }
}

#[async_trait]
impl RetentionStore for Store {
    async fn prune(&self, before: &str, dry_run: bool) -> StoreResult<PruneReport> {
        let mut tx = self.write().await?;
        let report = self.prune_in(&mut tx, before).await?;
        if dry_run {
            tx.rollback().await?;
            return Ok(report);
        }
        tx.commit().await?;
        sqlx::query(RECLAIM).execute(&self.pool).await?;
        Ok(report)
    }
}
