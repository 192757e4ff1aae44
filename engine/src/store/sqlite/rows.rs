//! Row conversions and the event insert shared by the store's transactions.

use super::*;

pub(super) async fn insert_events(
    tx: &mut sqlx::SqliteConnection,
    events: &[NewEvent],
) -> StoreResult<()> {
    let ts = now();
    for e in events {
        sqlx::query("INSERT INTO events (run_id, step_id, ts, kind, level, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&e.run_id)
            .bind(&e.step_id)
            .bind(&ts)
            .bind(&e.kind)
            .bind(&e.level)
            .bind(&e.message)
            .bind(e.data.as_ref().map(|d| d.to_string()))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub(super) fn run_from_row(r: &SqliteRow) -> StoreResult<RunRecord> {
    Ok(RunRecord {
        run_id: RunId(r.try_get("run_id")?),
        status: RunStatus::parse(r.try_get("status")?)?,
        selection: r.try_get("selection")?,
        force: r.try_get::<i64, _>("force")? != 0,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: r.try_get("error")?,
        pid: r.try_get("pid")?,
        host: r.try_get("host")?,
    })
}

pub(super) fn key_from(s: String) -> StoreResult<AssetKey> {
    AssetKey::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn json_from(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON in store: {e}")))
}

pub(super) fn mat_from_row(r: &SqliteRow) -> StoreResult<Materialization> {
    let upstream: Vec<UpstreamRead> = serde_json::from_str(r.try_get::<&str, _>("upstream")?)
        .map_err(|e| StoreError::Corrupt(format!("bad upstream JSON: {e}")))?;
    Ok(Materialization {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        m: NewMaterialization {
            asset_key: key_from(r.try_get("asset_key")?)?,
            partition_key: r.try_get("partition_key")?,
            run_id: RunId(r.try_get("run_id")?),
            step_id: r.try_get("step_id")?,
            seq: r.try_get("seq")?,
            delta_version: r.try_get("delta_version")?,
            row_count: r.try_get("row_count")?,
            schema: json_from(r.try_get("schema")?)?,
            data_version: r.try_get("data_version")?,
            code_version: r.try_get("code_version")?,
            upstream,
            metadata: json_from(r.try_get("metadata")?)?,
        },
    })
}

pub(super) fn step_from_row(r: &SqliteRow) -> StoreResult<StepRecord> {
    Ok(StepRecord {
        run_id: RunId(r.try_get("run_id")?),
        step_id: r.try_get("step_id")?,
        asset_key: key_from(r.try_get("asset_key")?)?,
        position: r.try_get("position")?,
        status: StepStatus::parse(r.try_get("status")?)?,
        attempt: r.try_get("attempt")?,
        seq: r.try_get("seq")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: r.try_get("error")?,
        reason: r.try_get("reason")?,
    })
}
