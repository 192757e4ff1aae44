// Row conversions and the run and step inserts shared by the store's transactions.

use super::*;

/// Rows per multi-row INSERT: SQLite binds at most 32766 parameters per statement.
const ROWS_PER_INSERT: usize = 4000;

/// Inserts a run's planned steps, in one statement per 4000.
pub(super) async fn insert_steps(
    tx: &mut DbConnection,
    run_id: &RunId,
    steps: &[StepRecord],
) -> StoreResult<()> {
    for chunk in steps.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO steps (run_id, step_id, asset_key, partition_key, position, status, attempt) ",
        );
        q.push_values(chunk, |mut b, s| {
            b.push_bind(run_id.as_str())
                .push_bind(&s.step_id)
                .push_bind(s.asset_key.as_str())
                .push_bind(s.partition_key.as_ref().map(|p| p.0.as_str()))
                .push_bind(s.position)
                .push_bind(s.status.as_str())
                .push_bind(0i64);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Records which upstream materializations (and Delta versions) materialization `id` read, in one
/// statement per 4000 upstreams.
pub(super) async fn insert_lineage(
    tx: &mut DbConnection,
    id: i64,
    upstream: &[UpstreamRead],
) -> StoreResult<()> {
    for chunk in upstream.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO lineage (materialization_id, upstream_key, upstream_partition, upstream_materialization_id, upstream_delta_version) ",
        );
        q.push_values(chunk, |mut b, u| {
            b.push_bind(id)
                .push_bind(u.key.as_str())
                .push_bind(u.partition.as_ref().map(|p| p.0.as_str()))
                .push_bind(u.materialization_id)
                .push_bind(u.delta_version);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(super) fn run_from_row(r: &DbRow) -> StoreResult<RunRecord> {
    Ok(RunRecord {
        run_id: RunId(r.try_get("run_id")?),
        status: RunStatus::parse(r.try_get("status")?)?,
        selection: r.try_get("selection")?,
        force: r.try_get::<i64, _>("force")? != 0,
        full_refresh: r.try_get::<i64, _>("full_refresh")? != 0,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: r.try_get("error")?,
        pid: r.try_get("pid")?,
        host: r.try_get("host")?,
        lease_until_ms: r.try_get("lease_until")?,
        owner: r.try_get("owner")?,
        launched_by: r.try_get("launched_by")?,
        tags: match r.try_get::<Option<String>, _>("tags")? {
            Some(t) => serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            None => Default::default(),
        },
    })
}

pub(super) fn key_from(s: String) -> StoreResult<AssetKey> {
    AssetKey::parse(&s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn json_from(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON in store: {e}")))
}

pub(super) fn mat_from_row(r: &DbRow) -> StoreResult<Materialization> {
    let upstream: Vec<UpstreamRead> = serde_json::from_str(r.try_get::<&str, _>("upstream")?)
        .map_err(|e| StoreError::Corrupt(format!("bad upstream JSON: {e}")))?;
    Ok(Materialization {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        m: NewMaterialization {
            asset_key: key_from(r.try_get("asset_key")?)?,
            partition_key: r
                .try_get::<Option<String>, _>("partition_key")?
                .map(PartitionKey),
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
            published: r.try_get::<i64, _>("published")? != 0,
            checks: Vec::new(),
            columns: Vec::new(),
        },
    })
}

pub(super) fn step_from_row(r: &DbRow) -> StoreResult<StepRecord> {
    Ok(StepRecord {
        run_id: RunId(r.try_get("run_id")?),
        step_id: r.try_get("step_id")?,
        asset_key: key_from(r.try_get("asset_key")?)?,
        partition_key: r
            .try_get::<Option<String>, _>("partition_key")?
            .map(PartitionKey),
        position: r.try_get("position")?,
        status: StepStatus::parse(r.try_get("status")?)?,
        attempt: r.try_get("attempt")?,
        seq: r.try_get("seq")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        error: r.try_get("error")?,
        reason: r.try_get("reason")?,
        failure_class: r.try_get("failure_class")?,
    })
}

/// The one record `id_or_prefix` names among `found` (the records whose id starts with it): the one
/// with exactly that id, else the only one; `Err(found)` when none or several are left (runs and
/// backfills are looked up by prefix alike).
pub(super) fn one_by_prefix<T>(
    found: Vec<T>,
    id_or_prefix: &str,
    id: impl Fn(&T) -> &str,
) -> Result<T, Vec<T>> {
    if let Some(i) = found.iter().position(|r| id(r) == id_or_prefix) {
        return Ok(found.into_iter().nth(i).expect("the position is in range"));
    }
    if found.len() == 1 {
        return Ok(found.into_iter().next().expect("one record"));
    }
    Err(found)
}
