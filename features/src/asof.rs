//! The point-in-time join as an as-of operator: the same semantics as the SQL of
//! [`crate::point_in_time`] (which stays the reference, and the planner `assets check` uses), computed
//! by grouping each view's rows by entity key (dense group numbers, then a counting sort into one flat
//! array), sorting each group by (event time, creation time), and finding each entity row's newest
//! feature row by binary search, on every core: `O((n + m) log m)` instead of a range join ranked by a
//! window function. One integer key is hashed as itself; other keys in Arrow's row format.
//!
//! Times are compared as microseconds since the epoch in UTC (a timestamp without a timezone counts as
//! UTC). Rows with a NULL key or time never match.

use crate::point_in_time::{point_in_time_sql, Entities, FeatureView, PitError};
use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64_with_seed;

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

/// The entity keys of a table's rows, in a form that hashes and compares exactly: one integer key as
/// itself (the common case, and five times cheaper to hash), anything else in Arrow's row format.
enum Keys {
    Int(Int64Array),
    Rows(Rows, Vec<bool>),
}

impl Keys {
    /// The keys of `columns` of `batch`, each cast to `types` (the entity table's key types).
    fn of(
        converter: &RowConverter,
        batch: &RecordBatch,
        columns: &[String],
        types: &[DataType],
        table: &str,
    ) -> Result<Keys, PitError> {
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (c, t) in columns.iter().zip(types) {
            let col = batch
                .column_by_name(c)
                .ok_or_else(|| def(format!("'{table}' has no key column '{c}'")))?;
            let t = if types.len() == 1 && t.is_integer() {
                &DataType::Int64
            } else {
                t
            };
            arrays.push(cast(col, t).map_err(|e| {
                def(format!(
                    "key '{c}' of '{table}' ({}) cannot be compared with the entities' ({t}): {e}",
                    col.data_type()
                ))
            })?);
        }
        if let [a] = arrays.as_slice() {
            if let Some(ints) = a.as_primitive_opt::<Int64Type>() {
                return Ok(Keys::Int(ints.clone()));
            }
        }
        let null = (0..batch.num_rows())
            .map(|i| arrays.iter().any(|a| a.is_null(i)))
            .collect();
        Ok(Keys::Rows(
            converter.convert_columns(&arrays).map_err(arrow_err)?,
            null,
        ))
    }
}

/// A hasher for keys: a multiply-rotate for integer keys, xxh3 over row-format keys (SipHash, the
/// default, cost a third of the join on 3M feature rows).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_i64(n as i64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<K> = HashMap<K, u32, BuildHasherDefault<KeyHasher>>;

/// A view's rows grouped by entity key: `groups[key]` is a group number `g`, whose rows are
/// `sorted[offsets[g]..offsets[g + 1]]` as (event time, row), ordered by event time, then creation
/// time, then row.
struct Grouped<K> {
    groups: KeyMap<K>,
    offsets: Vec<usize>,
    sorted: Vec<(i64, u32)>,
}

/// Groups the rows of a view with a key (`key(i)`, none when NULL) and an event time: a counting
/// sort on dense group numbers into one flat array, not a vector per entity, then a sort per group.
fn group<K: Hash + Eq>(
    key: impl Fn(usize) -> Option<K>,
    ts: &[Option<i64>],
    created: Option<&Rows>,
) -> Grouped<K> {
    let n = ts.len();
    let mut groups = KeyMap::with_capacity_and_hasher(n / 8, Default::default());
    let mut of = vec![u32::MAX; n];
    let mut counts: Vec<usize> = Vec::new();
    for (i, t) in ts.iter().enumerate() {
        let Some(k) = key(i).filter(|_| t.is_some()) else {
            continue;
        };
        let next = counts.len() as u32;
        let g = *groups.entry(k).or_insert(next);
        if g == next {
            counts.push(0);
        }
        counts[g as usize] += 1;
        of[i] = g;
    }
    let mut offsets = Vec::with_capacity(counts.len() + 1);
    offsets.push(0);
    for c in &counts {
        offsets.push(offsets[offsets.len() - 1] + c);
    }
    let mut next: Vec<usize> = offsets[..counts.len()].to_vec();
    let mut sorted = vec![(0i64, 0u32); offsets[counts.len()]];
    for (i, (g, t)) in of.iter().zip(ts).enumerate() {
        if let (Some(t), true) = (t, *g != u32::MAX) {
            let slot = &mut next[*g as usize];
            sorted[*slot] = (*t, i as u32);
            *slot += 1;
        }
    }
    for w in offsets.windows(2) {
        let part = &mut sorted[w[0]..w[1]];
        match created {
            // Ties on the event time go to the later creation time, then the later row.
            Some(c) => part.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    c.row(a.1 as usize)
                        .cmp(&c.row(b.1 as usize))
                        .then(a.1.cmp(&b.1))
                })
            }),
            None => part.sort_unstable(),
        }
    }
    Grouped {
        groups,
        offsets,
        sorted,
    }
}

/// For each entity row (`key(i)`, none when NULL; `entity_ts[i]`), the row of its newest feature row
/// in `grouped` within `ttl` microseconds; the rows are probed on every core.
fn probe<K: Hash + Eq + Sync>(
    grouped: &Grouped<K>,
    key: impl Fn(usize) -> Option<K> + Sync,
    entity_ts: &[Option<i64>],
    ttl: Option<i64>,
) -> UInt32Array {
    let one = |i: usize| -> Option<u32> {
        let t = entity_ts[i]?;
        let g = *grouped.groups.get(&key(i)?)? as usize;
        let part = &grouped.sorted[grouped.offsets[g]..grouped.offsets[g + 1]];
        let p = part.partition_point(|(f, _)| *f <= t);
        let (f, j) = *part.get(p.checked_sub(1)?)?;
        match ttl {
            Some(ttl) if f < t.saturating_sub(ttl) => None,
            _ => Some(j),
        }
    };
    let n = entity_ts.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1 << 16);
    let parts: Vec<Vec<Option<u32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|lo| s.spawn(move || (lo..n.min(lo + chunk)).map(one).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    parts.into_iter().flatten().collect()
}

/// For each entity row, the index of its feature row in `view` (none: no row in the window).
fn matches(
    converter: &RowConverter,
    entity_keys: &Keys,
    entity_ts: &[Option<i64>],
    view: &RecordBatch,
    v: &FeatureView,
    types: &[DataType],
) -> Result<UInt32Array, PitError> {
    let view_keys = Keys::of(converter, view, &v.keys, types, &v.table)?;
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
    let ttl = v.ttl.map(|d| d.as_micros().min(i64::MAX as u128) as i64);
    Ok(match (entity_keys, &view_keys) {
        (Keys::Int(e), Keys::Int(f)) => {
            let grouped = group(|i| f.is_valid(i).then(|| f.value(i)), &ts, created.as_ref());
            probe(
                &grouped,
                |i| e.is_valid(i).then(|| e.value(i)),
                entity_ts,
                ttl,
            )
        }
        (Keys::Rows(e, e_null), Keys::Rows(f, f_null)) => {
            let grouped = group(
                |i| (!f_null[i]).then(|| f.row(i).data()),
                &ts,
                created.as_ref(),
            );
            probe(
                &grouped,
                |i| (!e_null[i]).then(|| e.row(i).data()),
                entity_ts,
                ttl,
            )
        }
        _ => {
            return Err(def(format!(
                "the keys of '{}' differ in kind from the entities'",
                v.table
            )))
        }
    })
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
        let entity_keys = Keys::of(&converter, &entity, &v.keys, &types, &entities.table)?;
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
