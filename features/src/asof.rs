//! The point-in-time join as an as-of operator: the same semantics as the SQL of
//! [`crate::point_in_time`] (which stays the reference, and the planner `assets check` uses), computed
//! by grouping each view's rows by entity key, sorting each group by (event time, creation time), and
//! finding each entity row's newest feature row by binary search: `O((n + m) log m)` instead of a
//! range join ranked by a window function.
//!
//! Times are compared as microseconds since the epoch in UTC (a timestamp without a timezone counts as
//! UTC). Rows with a NULL key or time never match.

use crate::point_in_time::{point_in_time_sql, Entities, FeatureView, PitError};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

fn def(m: String) -> PitError {
    PitError::Definition(m)
}

fn arrow_err(e: arrow::error::ArrowError) -> PitError {
    PitError::DataFusion(e.into())
}

/// The whole of `table` with `columns`, as one batch.
async fn read(
    ctx: &SessionContext,
    table: &str,
    columns: &[&str],
) -> Result<RecordBatch, PitError> {
    let df = ctx.table(TableReference::bare(table)).await?;
    let df = if columns.is_empty() {
        df
    } else {
        df.select_columns(columns)?
    };
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    concat_batches(&schema, &batches).map_err(arrow_err)
}

/// Microseconds since the epoch (UTC) of a timestamp column; NULL stays NULL.
fn micros(batch: &RecordBatch, column: &str, table: &str) -> Result<Vec<Option<i64>>, PitError> {
    let col = batch
        .column_by_name(column)
        .ok_or_else(|| def(format!("'{table}' has no column '{column}'")))?;
    if !matches!(
        col.data_type(),
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
    ) {
        return Err(def(format!(
            "'{table}'.{column} is {}, not a timestamp",
            col.data_type()
        )));
    }
    let utc = cast(
        col,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
    .map_err(arrow_err)?;
    let a = utc.as_primitive::<TimestampMicrosecondType>();
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

/// Row-format keys of `columns` of `batch`, each cast to `types`; whether each row has a NULL key.
fn keys(
    converter: &RowConverter,
    batch: &RecordBatch,
    columns: &[String],
    types: &[DataType],
    table: &str,
) -> Result<(Rows, Vec<bool>), PitError> {
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (c, t) in columns.iter().zip(types) {
        let col = batch
            .column_by_name(c)
            .ok_or_else(|| def(format!("'{table}' has no key column '{c}'")))?;
        arrays.push(cast(col, t).map_err(|e| {
            def(format!(
                "key '{c}' of '{table}' ({}) cannot be compared with the entities' ({t}): {e}",
                col.data_type()
            ))
        })?);
    }
    let null = (0..batch.num_rows())
        .map(|i| arrays.iter().any(|a| a.is_null(i)))
        .collect();
    Ok((converter.convert_columns(&arrays).map_err(arrow_err)?, null))
}

/// For each entity row, the index of its feature row in `view` (none: no row in the window).
#[allow(clippy::too_many_arguments)]
fn matches(
    converter: &RowConverter,
    entity_keys: &(Rows, Vec<bool>),
    entity_ts: &[Option<i64>],
    view: &RecordBatch,
    v: &FeatureView,
    types: &[DataType],
) -> Result<UInt32Array, PitError> {
    let (rows, null_key) = keys(converter, view, &v.keys, types, &v.table)?;
    let ts = micros(view, &v.timestamp, &v.table)?;
    let created = match &v.created {
        Some(c) => {
            let col = view
                .column_by_name(c)
                .ok_or_else(|| def(format!("'{}' has no column '{c}'", v.table)))?;
            let conv = RowConverter::new(vec![SortField::new(col.data_type().clone())])
                .map_err(arrow_err)?;
            Some(
                conv.convert_columns(std::slice::from_ref(col))
                    .map_err(arrow_err)?,
            )
        }
        None => None,
    };
    let mut groups: HashMap<&[u8], Vec<u32>> = HashMap::new();
    for i in 0..view.num_rows() {
        if !null_key[i] && ts[i].is_some() {
            groups.entry(rows.row(i).data()).or_default().push(i as u32);
        }
    }
    for g in groups.values_mut() {
        g.sort_unstable_by(|a, b| {
            let (a, b) = (*a as usize, *b as usize);
            ts[a].cmp(&ts[b]).then_with(|| match &created {
                Some(c) => c.row(a).cmp(&c.row(b)),
                None => a.cmp(&b),
            })
        });
    }
    let ttl = v.ttl.map(|d| d.as_micros().min(i64::MAX as u128) as i64);
    let (entity_rows, entity_null) = entity_keys;
    Ok((0..entity_ts.len())
        .map(|i| {
            let t = entity_ts[i]?;
            if entity_null[i] {
                return None;
            }
            let g = groups.get(entity_rows.row(i).data())?;
            let p = g.partition_point(|j| ts[*j as usize].is_some_and(|f| f <= t));
            let j = *g.get(p.checked_sub(1)?)?;
            let f = ts[j as usize]?;
            match ttl {
                Some(ttl) if f < t.saturating_sub(ttl) => None,
                _ => Some(j),
            }
        })
        .collect())
}

/// The point-in-time join of `views` onto `entities` in `ctx`: the entity table's columns, then each
/// view's columns as `{view}__{column}`, one row per entity row in input order — what
/// [`crate::point_in_time::point_in_time_join`] computes, as one batch.
pub async fn point_in_time_table(
    ctx: &SessionContext,
    entities: &Entities,
    views: &[FeatureView],
) -> Result<RecordBatch, PitError> {
    // The same definition errors as the SQL (no views, a keyless view, names twice, reserved names).
    point_in_time_sql(entities, views)?;
    let entity = read(ctx, &entities.table, &[]).await?;
    let entity_ts = micros(&entity, &entities.timestamp, &entities.table)?;
    let mut fields: Vec<Arc<Field>> = entity.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = entity.columns().to_vec();
    for v in views {
        let types: Vec<DataType> = v
            .keys
            .iter()
            .map(|k| {
                entity
                    .column_by_name(k)
                    .map(|c| c.data_type().clone())
                    .ok_or_else(|| {
                        def(format!(
                            "the entity table '{}' has no key column '{k}'",
                            entities.table
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .map_err(arrow_err)?;
        let entity_keys = keys(&converter, &entity, &v.keys, &types, &entities.table)?;
        let wanted: Vec<&str> = v
            .keys
            .iter()
            .chain([&v.timestamp])
            .chain(&v.created)
            .chain(&v.columns)
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let view = read(ctx, &v.table, &wanted).await?;
        let idx = matches(&converter, &entity_keys, &entity_ts, &view, v, &types)?;
        for c in &v.columns {
            let col = view
                .column_by_name(c)
                .ok_or_else(|| def(format!("'{}' has no column '{c}'", v.table)))?;
            fields.push(Arc::new(Field::new(
                format!("{}__{c}", v.name),
                col.data_type().clone(),
                true,
            )));
            columns.push(take(col.as_ref(), &idx, None).map_err(arrow_err)?);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow_err)
}
