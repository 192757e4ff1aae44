//! `assets sql`: ad-hoc SQL over the run store (`spine.runs`, `spine.steps`, `spine.events`,
//! `spine.materializations` (with `published`), `spine.check_results`, `spine.column_lineage`, `spine.publications`, `spine.lineage`, `spine.backfills`, `spine.backfill_runs`, `spine.schedule_ticks`, and `spine.partitions`, computed) and over any asset table (by key, as in asset SQL).

use crate::engine::Engine;
use crate::error::EngineError;
use crate::key::AssetKey;
use arrow::array::{ArrayRef, BooleanBuilder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::execution::context::SQLOptions;
use futures::StreamExt;
use std::sync::Arc;

/// The type of a store table's column as SQL sees it.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
    /// Stored as 0/1, shown as a boolean (`WHERE passed`, `WHERE NOT published`).
    Bool,
}

/// Columns of each store table: (name, type).
const STORE_TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "runs",
        &[
            ("run_id", Col::Text),
            ("status", Col::Text),
            ("selection", Col::Text),
            ("force", Col::Bool),
            ("created_at", Col::Text),
            ("started_at", Col::Text),
            ("finished_at", Col::Text),
            ("error", Col::Text),
            ("pid", Col::Int),
            ("host", Col::Text),
        ],
    ),
    (
        "steps",
        &[
            ("run_id", Col::Text),
            ("step_id", Col::Text),
            ("asset_key", Col::Text),
            ("partition_key", Col::Text),
            ("position", Col::Int),
            ("status", Col::Text),
            ("attempt", Col::Int),
            ("seq", Col::Int),
            ("started_at", Col::Text),
            ("finished_at", Col::Text),
            ("error", Col::Text),
            ("reason", Col::Text),
            ("failure_class", Col::Text),
        ],
    ),
    (
        "events",
        &[
            ("id", Col::Int),
            ("run_id", Col::Text),
            ("step_id", Col::Text),
            ("ts", Col::Text),
            ("kind", Col::Text),
            ("level", Col::Text),
            ("message", Col::Text),
            ("data", Col::Text),
        ],
    ),
    (
        "materializations",
        &[
            ("id", Col::Int),
            ("asset_key", Col::Text),
            ("partition_key", Col::Text),
            ("run_id", Col::Text),
            ("step_id", Col::Text),
            ("seq", Col::Int),
            ("delta_version", Col::Int),
            ("row_count", Col::Int),
            ("schema", Col::Text),
            ("data_version", Col::Text),
            ("code_version", Col::Text),
            ("upstream", Col::Text),
            ("metadata", Col::Text),
            ("created_at", Col::Text),
            ("published", Col::Bool),
        ],
    ),
    (
        "check_results",
        &[
            ("materialization_id", Col::Int),
            ("asset_key", Col::Text),
            ("partition_key", Col::Text),
            ("run_id", Col::Text),
            ("check_name", Col::Text),
            ("kind", Col::Text),
            ("severity", Col::Text),
            ("passed", Col::Bool),
            ("failing_rows", Col::Int),
            ("samples", Col::Text),
            ("error", Col::Text),
            ("duration_ms", Col::Int),
            ("created_at", Col::Text),
        ],
    ),
    (
        "column_lineage",
        &[
            ("materialization_id", Col::Int),
            ("asset_key", Col::Text),
            ("column_name", Col::Text),
            ("position", Col::Int),
            ("upstream_key", Col::Text),
            ("upstream_column", Col::Text),
            ("how", Col::Text),
        ],
    ),
    (
        "publications",
        &[
            ("materialization_id", Col::Int),
            ("reason", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
    (
        "lineage",
        &[
            ("materialization_id", Col::Int),
            ("upstream_key", Col::Text),
            ("upstream_materialization_id", Col::Int),
            ("upstream_delta_version", Col::Int),
        ],
    ),
    (
        "backfills",
        &[
            ("backfill_id", Col::Text),
            ("selection", Col::Text),
            ("partitions", Col::Text),
            ("filter", Col::Text),
            ("per_run", Col::Int),
            ("concurrency", Col::Int),
            ("steps", Col::Int),
            ("created_at", Col::Text),
            ("cancelled_at", Col::Text),
        ],
    ),
    (
        "backfill_runs",
        &[
            ("backfill_id", Col::Text),
            ("chunk", Col::Int),
            ("attempt", Col::Int),
            ("run_id", Col::Text),
        ],
    ),
    (
        "schedule_ticks",
        &[
            ("schedule", Col::Text),
            ("tick_at", Col::Text),
            ("status", Col::Text),
            ("run_id", Col::Text),
            ("reason", Col::Text),
            ("created_at", Col::Text),
        ],
    ),
];

/// Columns of `spine.partitions`: every partition of every partitioned asset that exists now, with its
/// state and latest materialization.
const PARTITION_COLUMNS: &[(&str, Col)] = &[
    ("asset_key", Col::Text),
    ("partition_key", Col::Text),
    ("state", Col::Text),
    ("materialization_id", Col::Int),
    ("delta_version", Col::Int),
    ("row_count", Col::Int),
    ("data_version", Col::Text),
    ("run_id", Col::Text),
    ("materialized_at", Col::Text),
];

/// Registers `rows` (JSON objects) as the table `spine.NAME` with `cols` (name, type).
fn register_rows(
    ctx: &datafusion::prelude::SessionContext,
    table: &str,
    cols: &[(&str, Col)],
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<(), EngineError> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, col)| {
            let t = match col {
                Col::Int => DataType::Int64,
                Col::Text => DataType::Utf8,
                Col::Bool => DataType::Boolean,
            };
            Field::new(*n, t, true)
        })
        .collect();
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .map(|(n, col)| -> ArrayRef {
            let value = |r: &serde_json::Map<String, serde_json::Value>| r.get(*n).cloned();
            match col {
                Col::Int => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    rows.iter()
                        .for_each(|r| b.append_option(value(r).and_then(|v| v.as_i64())));
                    Arc::new(b.finish())
                }
                Col::Text => {
                    let mut b = StringBuilder::new();
                    rows.iter()
                        .for_each(|r| b.append_option(r.get(*n).and_then(|v| v.as_str())));
                    Arc::new(b.finish())
                }
                Col::Bool => {
                    let mut b = BooleanBuilder::with_capacity(rows.len());
                    rows.iter().for_each(|r| {
                        b.append_option(
                            value(r).and_then(|v| v.as_bool().or(v.as_i64().map(|i| i != 0))),
                        )
                    });
                    Arc::new(b.finish())
                }
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
        if let Some(source) = engine.in_place(&engine.project.assets[&key]) {
            let bad = |m: String| {
                crate::error::DefinitionError::new("E0240", format!("source '{key}': {m}"))
            };
            let look = source.look().await.map_err(bad)?;
            let table = source.table(&ctx, &look).await.map_err(bad)?;
            ctx.register_table(TableReference::bare(key.as_str()), table)?;
            continue;
        }
        if !at.contains_key(&key) && engine.project.assets[&key].partitions.is_some() {
            // Each partition as published (a held-back one from its published version).
            let published: std::collections::HashMap<crate::key::PartitionKey, i64> = engine
                .store
                .latest_materializations()
                .await?
                .into_iter()
                .filter(|(k, _)| k.asset == key)
                .filter_map(|(k, m)| k.partition.map(|p| (p, m.m.delta_version)))
                .collect();
            if let Some(newest) = published.values().max() {
                let base = engine.read_version(&key, *newest).await;
                if let Some(base) = engine.warehouse.provider(&key, Some(base), &ctx).await? {
                    engine
                        .register_published(&ctx, &key, base, None, &published)
                        .await?;
                    continue;
                }
            }
        }
        let pinned = match at.get(&key) {
            Some(v) => Some(*v),
            None => published_version(engine, &key).await?,
        };
        let latest = match at.get(&key) {
            Some(_) => engine
                .warehouse
                .provider(&key, None, &ctx)
                .await?
                .map(|(_, v)| v),
            None => None,
        };
        if let (Some(v), Some(l)) = (at.get(&key).copied(), latest) {
            if v < 0 || v > l {
                return Err(crate::error::DefinitionError::new(
                    "E0307",
                    format!("asset '{key}' has no Delta version {v} (its versions are 0 to {l})"),
                )
                .hint(format!("`assets history {key}` lists them"))
                .into());
            }
        }
        let opened = match (at.get(&key), latest) {
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
    let plan = match ctx.state().create_logical_plan(&rewritten).await {
        Ok(plan) => plan,
        Err(e) => return Err(unknown_table(engine, &e).unwrap_or_else(|| e.into())),
    };
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

/// The Delta version `assets sql` reads of an unpartitioned asset when no `--at` pins it: its last
/// published materialization's (a version held back by a failed check is not what the asset serves;
/// `--at` reads it). `None` (read the latest) for a partitioned asset with no published partition
/// (one with some is read partition by partition as published), and for a table the run store has
/// no record of. E0305 when every materialization of
/// the asset is held back.
async fn published_version(engine: &Engine, key: &AssetKey) -> Result<Option<i64>, EngineError> {
    if engine.project.assets[key].partitions.is_some() {
        return Ok(None);
    }
    let whole = crate::key::StepKey::whole(key.clone());
    if let Some(m) = engine.store.latest_materialization(&whole).await? {
        return Ok(Some(engine.read_version(key, m.m.delta_version).await));
    }
    match engine.store.materializations(key, 1).await?.first() {
        Some(held) => Err(crate::error::DefinitionError::new(
            "E0305",
            format!(
                "asset '{key}' has no published version: its checks held back every \
                 materialization (the latest is Delta version {})",
                held.m.delta_version
            ),
        )
        .hint(format!(
            "read the held-back one with --at {key}={}, or `assets publish` it",
            held.m.delta_version
        ))
        .into()),
        None => Ok(None),
    }
}

/// E0310 for a query naming a table that is neither an asset nor a `spine.*` table (DataFusion's
/// "table 'datafusion.marts.nope' not found"), with the closest asset key.
fn unknown_table(engine: &Engine, e: &datafusion::error::DataFusionError) -> Option<EngineError> {
    let message = e.strip_backtrace();
    let name = message
        .split_once("table '")
        .and_then(|(_, rest)| rest.split_once("' not found"))
        .map(|(name, _)| name.trim_start_matches("datafusion.").to_string())?;
    let as_key = name.replace('.', "/");
    let mut err = crate::error::DefinitionError::new(
        "E0310",
        format!("`assets sql`: no asset or spine.* table named '{name}'"),
    );
    let keys = engine.project.assets.keys().map(|k| k.as_str());
    err = match crate::project::closest(&as_key, keys) {
        Some(k) => err.hint(format!(
            "did you mean '{k}'? (write it as {} or \"{k}\")",
            k.replace('/', ".")
        )),
        None => err.hint("`assets list` shows the assets; spine.runs, spine.materializations and the other store tables are in docs/reference/cli.md"),
    };
    Some(err.into())
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
