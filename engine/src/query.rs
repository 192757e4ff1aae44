//! `assets sql`: ad-hoc SQL over the run store (`spine.runs`, `spine.steps`, `spine.events`,
//! `spine.materializations` (with `published`), `spine.check_results`, `spine.column_lineage`, `spine.publications`, `spine.lineage`, `spine.backfills`, `spine.backfill_runs`, `spine.schedule_ticks`, and `spine.partitions`, computed) and over any asset table (by key, as in asset SQL).

use crate::engine::Engine;
use crate::error::EngineError;
use crate::key::AssetKey;
use arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use futures::StreamExt;
use std::sync::Arc;

/// Columns of each store table: (name, is integer).
const STORE_TABLES: &[(&str, &[(&str, bool)])] = &[
    (
        "runs",
        &[
            ("run_id", false),
            ("status", false),
            ("selection", false),
            ("force", true),
            ("created_at", false),
            ("started_at", false),
            ("finished_at", false),
            ("error", false),
            ("pid", true),
            ("host", false),
        ],
    ),
    (
        "steps",
        &[
            ("run_id", false),
            ("step_id", false),
            ("asset_key", false),
            ("partition_key", false),
            ("position", true),
            ("status", false),
            ("attempt", true),
            ("seq", true),
            ("started_at", false),
            ("finished_at", false),
            ("error", false),
            ("reason", false),
        ],
    ),
    (
        "events",
        &[
            ("id", true),
            ("run_id", false),
            ("step_id", false),
            ("ts", false),
            ("kind", false),
            ("level", false),
            ("message", false),
            ("data", false),
        ],
    ),
    (
        "materializations",
        &[
            ("id", true),
            ("asset_key", false),
            ("partition_key", false),
            ("run_id", false),
            ("step_id", false),
            ("seq", true),
            ("delta_version", true),
            ("row_count", true),
            ("schema", false),
            ("data_version", false),
            ("code_version", false),
            ("upstream", false),
            ("metadata", false),
            ("created_at", false),
            ("published", true),
        ],
    ),
    (
        "check_results",
        &[
            ("materialization_id", true),
            ("asset_key", false),
            ("partition_key", false),
            ("run_id", false),
            ("check_name", false),
            ("kind", false),
            ("severity", false),
            ("passed", true),
            ("failing_rows", true),
            ("samples", false),
            ("error", false),
            ("duration_ms", true),
            ("created_at", false),
        ],
    ),
    (
        "column_lineage",
        &[
            ("materialization_id", true),
            ("asset_key", false),
            ("column_name", false),
            ("position", true),
            ("upstream_key", false),
            ("upstream_column", false),
            ("how", false),
        ],
    ),
    (
        "publications",
        &[
            ("materialization_id", true),
            ("reason", false),
            ("created_at", false),
        ],
    ),
    (
        "lineage",
        &[
            ("materialization_id", true),
            ("upstream_key", false),
            ("upstream_materialization_id", true),
            ("upstream_delta_version", true),
        ],
    ),
    (
        "backfills",
        &[
            ("backfill_id", false),
            ("selection", false),
            ("partitions", false),
            ("filter", false),
            ("per_run", true),
            ("concurrency", true),
            ("steps", true),
            ("created_at", false),
            ("cancelled_at", false),
        ],
    ),
    (
        "backfill_runs",
        &[
            ("backfill_id", false),
            ("chunk", true),
            ("attempt", true),
            ("run_id", false),
        ],
    ),
    (
        "schedule_ticks",
        &[
            ("schedule", false),
            ("tick_at", false),
            ("status", false),
            ("run_id", false),
            ("reason", false),
            ("created_at", false),
        ],
    ),
];

/// Columns of `spine.partitions`: every partition of every partitioned asset that exists now, with its
/// state and latest materialization.
const PARTITION_COLUMNS: &[(&str, bool)] = &[
    ("asset_key", false),
    ("partition_key", false),
    ("state", false),
    ("materialization_id", true),
    ("delta_version", true),
    ("row_count", true),
    ("data_version", false),
    ("run_id", false),
    ("materialized_at", false),
];

/// Registers `rows` (JSON objects) as the table `spine.NAME` with `cols` (name, is integer).
fn register_rows(
    ctx: &datafusion::prelude::SessionContext,
    table: &str,
    cols: &[(&str, bool)],
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<(), EngineError> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, int)| {
            Field::new(
                *n,
                if *int {
                    DataType::Int64
                } else {
                    DataType::Utf8
                },
                true,
            )
        })
        .collect();
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .map(|(n, int)| -> ArrayRef {
            if *int {
                let mut b = Int64Builder::with_capacity(rows.len());
                rows.iter()
                    .for_each(|r| b.append_option(r.get(*n).and_then(|v| v.as_i64())));
                Arc::new(b.finish())
            } else {
                let mut b = StringBuilder::new();
                rows.iter()
                    .for_each(|r| b.append_option(r.get(*n).and_then(|v| v.as_str())));
                Arc::new(b.finish())
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(datafusion::error::DataFusionError::from)?;
    let mem = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    ctx.register_table(TableReference::partial("spine", table), Arc::new(mem))?;
    Ok(())
}

/// Runs `sql` and returns the result batches.
pub async fn run_sql(engine: &Engine, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
    run_sql_at(engine, sql, &std::collections::BTreeMap::new()).await
}

/// Runs `sql` reading the tables in `at` at those Delta versions (time travel) and every other asset
/// table at its latest version. E0307 for a version the table does not have, or an asset the query
/// does not read.
pub async fn run_sql_at(
    engine: &Engine,
    sql: &str,
    at: &std::collections::BTreeMap<AssetKey, i64>,
) -> Result<Vec<RecordBatch>, EngineError> {
    let limit = engine.project.config.memory_limit;
    let ctx = crate::session::bounded(&engine.project.config, Default::default());
    let schema = Arc::new(MemorySchemaProvider::new());
    ctx.catalog("datafusion")
        .ok_or_else(|| EngineError::Internal("default catalog missing".into()))?
        .register_schema("spine", schema)?;
    let lower = sql.to_ascii_lowercase();
    for (table, cols) in STORE_TABLES {
        if !lower.contains(table) {
            continue;
        }
        let rows = engine.store.dump_table(table).await?;
        register_rows(&ctx, table, cols, &rows)?;
    }
    if lower.contains("partitions") {
        register_rows(
            &ctx,
            "partitions",
            PARTITION_COLUMNS,
            &engine.partition_rows().await?,
        )?;
    }
    let project = engine.project.clone();
    let known = move |k: &AssetKey| project.assets.contains_key(k);
    let (rewritten, keys) = crate::sql::rewrite_known(sql, &known).map_err(|e| {
        crate::error::DefinitionError::new("E0301", format!("SQL does not parse: {e}"))
            .hint("check the query syntax")
    })?;
    if let Some(k) = at.keys().find(|k| !keys.contains(k)) {
        return Err(crate::error::DefinitionError::new(
            "E0307",
            format!("--at names '{k}', which the query does not read"),
        )
        .hint("pin only the assets the query reads")
        .into());
    }
    for key in keys {
        // A source (not copied) is read as its files are now.
        if at.contains_key(&key) && engine.project.assets[&key].read_in_place() {
            return Err(crate::error::DefinitionError::new(
                "E0307",
                format!("--at: source '{key}' is read in place and has no Delta versions"),
            )
            .hint("time travel needs a table: `snapshot: true` copies a source into Delta")
            .into());
        }
        if let Some(source) = engine.project.assets[&key]
            .body
            .config::<crate::kinds::source::SourceConfig>()
            .filter(|c| !c.snapshot)
        {
            let bad = |m: String| {
                crate::error::DefinitionError::new("E0240", format!("source '{key}': {m}"))
            };
            let (_, observed) = source.look().await.map_err(bad)?;
            let table = source.table(&ctx, &observed).await.map_err(bad)?;
            ctx.register_table(TableReference::bare(key.as_str()), table)?;
            continue;
        }
        let pinned = at.get(&key).copied();
        let latest = match pinned {
            Some(_) => engine
                .warehouse
                .provider(&key, None, &ctx)
                .await?
                .map(|(_, v)| v),
            None => None,
        };
        if let (Some(v), Some(l)) = (pinned, latest) {
            if v < 0 || v > l {
                return Err(crate::error::DefinitionError::new(
                    "E0307",
                    format!("asset '{key}' has no Delta version {v} (its versions are 0 to {l})"),
                )
                .hint(format!("`assets history {key}` lists them"))
                .into());
            }
        }
        let opened = match (pinned, latest) {
            (Some(_), None) => None,
            _ => engine.warehouse.provider(&key, pinned, &ctx).await?,
        };
        match opened {
            Some((provider, _)) => {
                ctx.register_table(TableReference::bare(key.as_str()), provider)?;
            }
            None => {
                return Err(crate::error::DefinitionError::new(
                    "E0305",
                    format!("asset '{key}' has no table yet"),
                )
                .hint(format!("materialize it first: assets materialize {key}"))
                .into())
            }
        }
    }
    // Read-only by construction: only queries are planned. INSERT, COPY, CREATE, SET and the like would
    // change tables behind the run store's back (or write files anywhere).
    let plan = ctx.state().create_logical_plan(&rewritten).await?;
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    if let Err(e) = read_only.verify_plan(&plan) {
        return Err(crate::error::DefinitionError::new(
            "E0306",
            format!("`assets sql` is read-only: {}", e.strip_backtrace()),
        )
        .hint("use a SELECT (or WITH … SELECT); to change data, change an asset and materialize it")
        .into());
    }
    let df = ctx.execute_logical_plan(plan).await?;
    // The result is held in memory to be printed: it counts against the same limit as execution.
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| memory_error(e, limit))?;
    let (mut batches, mut held) = (Vec::new(), 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| memory_error(e, limit))?;
        held += batch.get_array_memory_size();
        if held > limit {
            return Err(EngineError::MemoryLimit {
                limit: crate::session::bytes(limit),
                detail: "the query's result alone is larger; add a LIMIT, or aggregate".into(),
            });
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// A DataFusion error, as [`EngineError::MemoryLimit`] when the memory pool refused an allocation.
fn memory_error(e: datafusion::error::DataFusionError, limit: usize) -> EngineError {
    match e.find_root() {
        datafusion::error::DataFusionError::ResourcesExhausted(m) => EngineError::MemoryLimit {
            limit: crate::session::bytes(limit),
            detail: m.clone(),
        },
        _ => EngineError::Query(e),
    }
}
