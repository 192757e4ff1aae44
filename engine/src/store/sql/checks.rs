// The SQLite implementation of [`CheckStore`] and [`CheckReads`], and the insert of a materialization's check outcomes
// in the transaction that records it.

use super::*;
use crate::store::checks::CheckReads;
use crate::store::checks::{CheckRecord, CheckStore, Publication};
use crate::store::CheckOutcome;
use spine_schemas::events::CheckSeverity;

async fn insert(
    conn: &mut DbConnection,
    id: i64,
    (asset, partition, run): (&str, Option<&str>, Option<&str>),
    outcomes: &[CheckOutcome],
    ts: &str,
) -> StoreResult<()> {
    // One statement for all of them (13 binds each: far below SQLite's limit for any project).
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO check_results (materialization_id, asset_key, partition_key, run_id, check_name, kind,
         severity, passed, failing_rows, samples, error, duration_ms, created_at) ",
    );
    q.push_values(outcomes, |mut b, c| {
        b.push_bind(id)
            .push_bind(asset)
            .push_bind(partition)
            .push_bind(run)
            .push_bind(&c.name)
            .push_bind(&c.kind)
            .push_bind(c.severity.as_str())
            .push_bind(i64::from(c.passed))
            .push_bind(c.failing_rows)
            .push_bind(serde_json::Value::Array(c.samples.clone()).to_string())
            .push_bind(&c.error)
            .push_bind(c.duration_ms)
            .push_bind(ts);
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// Inserts `m`'s check outcomes as those of materialization `id`.
pub(super) async fn insert_check_results(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
    m: &NewMaterialization,
    ts: &str,
) -> StoreResult<()> {
    let who = (
        m.asset_key.as_str(),
        m.partition_key.as_ref().map(|p| p.0.as_str()),
        Some(m.run_id.as_str()),
    );
    insert(tx, id, who, &m.checks, ts).await
}

fn record_from_row(r: &DbRow) -> StoreResult<CheckRecord> {
    let samples = json_from(r.try_get("samples")?)?;
    let asset: String = r.try_get("asset_key")?;
    let step_id = match r.try_get::<Option<String>, _>("partition_key")? {
        Some(p) => format!("{asset}[{p}]"),
        None => asset,
    };
    Ok(CheckRecord {
        materialization_id: r.try_get("materialization_id")?,
        step_id,
        run_id: r.try_get::<Option<String>, _>("run_id")?.map(RunId),
        created_at: r.try_get("created_at")?,
        outcome: CheckOutcome {
            name: r.try_get("check_name")?,
            kind: r.try_get("kind")?,
            severity: if r.try_get::<&str, _>("severity")? == "warn" {
                CheckSeverity::Warn
            } else {
                CheckSeverity::Error
            },
            passed: r.try_get::<i64, _>("passed")? != 0,
            failing_rows: r.try_get("failing_rows")?,
            samples: samples.as_array().cloned().unwrap_or_default(),
            duration_ms: r.try_get("duration_ms")?,
            error: r.try_get("error")?,
        },
    })
}

#[async_trait]
impl CheckStore for Store {
    async fn record_checks(&self, id: i64, outcomes: &[CheckOutcome]) -> StoreResult<()> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let row =
            sqlx::query("SELECT asset_key, partition_key FROM materializations WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("materialization {id}")))?;
        let (asset, partition): (String, Option<String>) =
            (row.try_get("asset_key")?, row.try_get("partition_key")?);
        insert(
            &mut tx,
            id,
            (&asset, partition.as_deref(), None),
            outcomes,
            &ts,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn materialization_at(
        &self,
        key: &AssetKey,
        partition: Option<&str>,
        version: i64,
    ) -> StoreResult<Option<Materialization>> {
        let row = sqlx::query(
            "SELECT * FROM materializations WHERE asset_key = $1 AND partition_key IS NOT DISTINCT FROM $2 AND delta_version = $3
             ORDER BY id DESC LIMIT 1",
        )
        .bind(key.as_str())
        .bind(partition)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mat_from_row).transpose()
    }

    async fn held_back(&self) -> StoreResult<Vec<Materialization>> {
        let rows = sqlx::query(
            "SELECT * FROM materializations m WHERE m.published = 0 AND m.id > COALESCE(
               (SELECT MAX(p.id) FROM materializations p WHERE p.asset_key = m.asset_key
                AND p.partition_key IS NOT DISTINCT FROM m.partition_key AND p.published = 1), 0)
             ORDER BY m.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mat_from_row).collect()
    }

    async fn held_back_of(&self, key: &AssetKey) -> StoreResult<Vec<Materialization>> {
        let rows = sqlx::query(
            "SELECT * FROM materializations m WHERE m.asset_key = $1 AND m.published = 0 AND m.id > COALESCE(
               (SELECT MAX(p.id) FROM materializations p WHERE p.asset_key = m.asset_key
                AND p.partition_key IS NOT DISTINCT FROM m.partition_key AND p.published = 1), 0)
             ORDER BY m.id",
        )
        .bind(key.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mat_from_row).collect()
    }

    async fn make_live(&self, id: i64, reason: &str, actor: &str) -> StoreResult<(bool, Vec<i64>)> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let published = sqlx::query(
            "UPDATE materializations SET published = 1 WHERE id = $1 AND published = 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let mut newer: Vec<i64> = sqlx::query_scalar(
            "UPDATE materializations SET published = 0 WHERE id IN
               (SELECT n.id FROM materializations n JOIN materializations m ON m.id = $1
                WHERE n.asset_key = m.asset_key
                  AND n.partition_key IS NOT DISTINCT FROM m.partition_key
                  AND n.id > m.id AND n.published = 1)
             RETURNING id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        newer.sort_unstable();
        if published {
            record_publication(&mut tx, id, (reason, &ts), "publish", Some(actor)).await?;
        }
        for n in &newer {
            record_publication(&mut tx, *n, (reason, &ts), "retract", Some(actor)).await?;
        }
        tx.commit().await?;
        Ok((published, newer))
    }

    async fn publications(&self, key: &AssetKey) -> StoreResult<Vec<Publication>> {
        let rows = sqlx::query(
            "SELECT p.materialization_id, p.action, p.reason, p.actor, p.created_at
             FROM publications p JOIN materializations m ON m.id = p.materialization_id
             WHERE m.asset_key = $1 ORDER BY p.id",
        )
        .bind(key.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Publication {
                    materialization_id: r.try_get("materialization_id")?,
                    action: r.try_get("action")?,
                    reason: r.try_get("reason")?,
                    actor: r.try_get("actor")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn publish(&self, id: i64, reason: &str) -> StoreResult<bool> {
        let ts = self.clock.stamp();
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE materializations SET published = 1 WHERE id = $1 AND published = 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0 {
            record_publication(&mut tx, id, (reason, &ts), "publish", None).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }
}

/// Records a publication (`publish` or `retract`) of materialization `id` in `tx`: `(reason, time)`.
async fn record_publication(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
    (reason, ts): (&str, &str),
    action: &str,
    actor: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO publications (materialization_id, reason, created_at, action, actor) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(reason)
    .bind(ts)
    .bind(action)
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl CheckReads for Store {
    async fn check_results(&self, id: i64) -> StoreResult<Vec<CheckRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM check_results WHERE id IN
             (SELECT MAX(id) FROM check_results WHERE materialization_id = $1 GROUP BY check_name)
             ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn run_check_results(&self, run_id: &RunId) -> StoreResult<Vec<CheckRecord>> {
        let rows = sqlx::query("SELECT * FROM check_results WHERE run_id = $1 ORDER BY id")
            .bind(run_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }
}
