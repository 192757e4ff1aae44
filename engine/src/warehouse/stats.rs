//! Per-file column statistics for the Delta log (`stats` of an Add action): row count, and for each of
//! the first [`INDEXED_COLUMNS`] top-level columns its null count and, where the type allows, its
//! minimum and maximum, in the JSON form the Delta protocol defines. Engines (delta-rs, Spark, DuckDB,
//! Spine's own scans through delta-rs) skip files whose range cannot match a predicate.
//!
//! Invariant: a written bound is never tighter than the data. Every value of the column lies in
//! `[minValues, maxValues]`: a string longer than [`STRING_PREFIX`] characters keeps a prefix as its
//! minimum (a prefix sorts before the string) and writes no maximum; a timestamp maximum is rounded up
//! to the next millisecond (the protocol's precision); a NaN drops the float column's bounds. A column
//! without a safe bound simply has none (no skipping, never a wrong skip).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::aggregate;
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use serde_json::{json, Map, Value};

/// Columns that get statistics (Delta's default `delta.dataSkippingNumIndexedCols`).
pub const INDEXED_COLUMNS: usize = 32;
/// Characters of a string kept as its bound (Spark's and delta-rs's truncation length).
pub const STRING_PREFIX: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Bound {
    Int(i64),
    Float(f64),
    Str(String),
    Date(i32),
    /// Microseconds since the epoch, UTC.
    Micros(i64),
}

impl Bound {
    fn less(&self, other: &Bound) -> bool {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) => a < b,
            (Bound::Float(a), Bound::Float(b)) => a < b,
            (Bound::Str(a), Bound::Str(b)) => a < b,
            (Bound::Date(a), Bound::Date(b)) => a < b,
            (Bound::Micros(a), Bound::Micros(b)) => a < b,
            _ => false,
        }
    }

    fn to_json(&self, upper: bool) -> Value {
        match self {
            Bound::Int(v) => json!(v),
            Bound::Float(v) => json!(v),
            Bound::Str(v) => json!(v),
            Bound::Date(d) => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map(|d| json!(d.format("%Y-%m-%d").to_string()))
                .unwrap_or(Value::Null),
            Bound::Micros(us) => {
                let ms = if upper {
                    us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
                } else {
                    us.div_euclid(1000)
                };
                chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
                    .unwrap_or(Value::Null)
            }
        }
    }
}

/// One column's statistics so far.
#[derive(Debug, Default)]
struct Column {
    nulls: i64,
    min: Option<Bound>,
    max: Option<Bound>,
    /// A value was seen that has no safe bound: no min/max for this column.
    no_bounds: bool,
    /// A string longer than the prefix was the maximum candidate: no max for this column.
    no_max: bool,
}

/// Folds batches of one file into its Delta statistics.
#[derive(Debug)]
pub struct FileStats {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: i64,
}

impl FileStats {
    /// Statistics of a file of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let n = schema.fields().len().min(INDEXED_COLUMNS);
        FileStats {
            schema,
            columns: (0..n).map(|_| Column::default()).collect(),
            rows: 0,
        }
    }

    /// Adds a batch's rows.
    pub fn update(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as i64;
        for (i, column) in self.columns.iter_mut().enumerate() {
            let Some(array) = batch.columns().get(i) else {
                continue;
            };
            column.nulls += array.null_count() as i64;
            if column.no_bounds || array.null_count() == array.len() {
                continue;
            }
            match bounds(array) {
                Some((lo, hi, hi_exact)) => {
                    if column.min.as_ref().is_none_or(|m| lo.less(m)) {
                        column.min = Some(lo);
                    }
                    let replaces = column.max.as_ref().is_none_or(|m| m.less(&hi));
                    if replaces {
                        column.max = Some(hi);
                    }
                    if !hi_exact {
                        column.no_max = true;
                    }
                }
                None => column.no_bounds = true,
            }
        }
    }

    /// The `stats` JSON of the Add action.
    pub fn finish(&self) -> Value {
        let mut min = Map::new();
        let mut max = Map::new();
        let mut nulls = Map::new();
        for (field, column) in self.schema.fields().iter().zip(&self.columns) {
            if matches!(
                field.data_type(),
                DataType::Struct(_)
                    | DataType::List(_)
                    | DataType::LargeList(_)
                    | DataType::Map(..)
            ) {
                continue;
            }
            nulls.insert(field.name().clone(), json!(column.nulls));
            if column.no_bounds {
                continue;
            }
            if let Some(v) = column.min.as_ref().map(|b| b.to_json(false)) {
                if !v.is_null() {
                    min.insert(field.name().clone(), v);
                }
            }
            if column.no_max {
                continue;
            }
            if let Some(v) = column.max.as_ref().map(|b| b.to_json(true)) {
                if !v.is_null() {
                    max.insert(field.name().clone(), v);
                }
            }
        }
        json!({
            "numRecords": self.rows,
            "minValues": min,
            "maxValues": max,
            "nullCount": nulls,
        })
    }
}

/// The smallest and largest non-null value of `array`, and whether the maximum is exact (false: a
/// string maximum longer than the prefix, which cannot be truncated safely). `None` when the type has
/// no bounds here (booleans, binary, decimals, nested) or a float holds NaN.
fn bounds(array: &ArrayRef) -> Option<(Bound, Bound, bool)> {
    let cast = |t: &DataType| arrow::compute::cast(array, t).ok();
    match array.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let a = cast(&DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            Some((
                Bound::Int(aggregate::min(a)?),
                Bound::Int(aggregate::max(a)?),
                true,
            ))
        }
        DataType::Float32 | DataType::Float64 => {
            let a = cast(&DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            // NaN sorts above every number in Arrow's max: a NaN maximum means the column holds one.
            let (lo, hi) = (aggregate::min(a)?, aggregate::max(a)?);
            if lo.is_nan() || hi.is_nan() {
                return None;
            }
            Some((Bound::Float(lo), Bound::Float(hi), true))
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            Some((
                Bound::Date(aggregate::min(a)?),
                Bound::Date(aggregate::max(a)?),
                true,
            ))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = array.as_primitive::<TimestampMicrosecondType>();
            Some((
                Bound::Micros(aggregate::min(a)?),
                Bound::Micros(aggregate::max(a)?),
                true,
            ))
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let lo = aggregate::min_string(a)?;
            let hi = aggregate::max_string(a)?;
            let lo: String = lo.chars().take(STRING_PREFIX).collect();
            let exact = hi.chars().nth(STRING_PREFIX).is_none();
            Some((Bound::Str(lo), Bound::Str(hi.to_string()), exact))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .expect("batch")
    }

    #[test]
    fn bounds_fold_across_batches_and_count_nulls() {
        let one = batch(vec![
            (
                "id",
                Arc::new(Int32Array::from(vec![Some(5), None, Some(9)])),
            ),
            ("name", Arc::new(StringArray::from(vec!["m", "b", "x"]))),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ),
        ]);
        let two = batch(vec![
            (
                "id",
                Arc::new(Int32Array::from(vec![Some(-3), Some(7), None])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a"), None, Some("z")])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![None, None, Some(false)])),
            ),
        ]);
        let mut stats = FileStats::new(one.schema());
        stats.update(&one);
        stats.update(&two);
        assert_eq!(
            stats.finish(),
            json!({
                "numRecords": 6,
                "minValues": {"id": -3, "name": "a"},
                "maxValues": {"id": 9, "name": "z"},
                "nullCount": {"id": 2, "name": 1, "flag": 2},
            })
        );
    }

    #[test]
    fn every_value_lies_within_the_written_bounds() {
        // A long string keeps a prefix as minimum and loses its maximum; a sub-millisecond timestamp
        // maximum rounds up; a NaN drops the float bounds; dates print as dates.
        let long_hi = "z".repeat(STRING_PREFIX + 5);
        let long_lo = format!("{}b", "a".repeat(STRING_PREFIX));
        let b = batch(vec![
            (
                "s",
                Arc::new(StringArray::from(vec![long_lo.as_str(), long_hi.as_str()])),
            ),
            (
                "t",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![1_000_000, 1_000_001])
                        .with_timezone("UTC"),
                ),
            ),
            ("f", Arc::new(Float64Array::from(vec![1.0, f64::NAN]))),
            ("d", Arc::new(Date32Array::from(vec![19_723, 0]))),
        ]);
        let mut stats = FileStats::new(b.schema());
        stats.update(&b);
        let out = stats.finish();
        assert_eq!(out["minValues"]["s"], json!("a".repeat(STRING_PREFIX)));
        assert!(out["minValues"]["s"].as_str() <= Some(long_lo.as_str()));
        assert!(out["maxValues"].get("s").is_none());
        assert_eq!(out["minValues"]["t"], json!("1970-01-01T00:00:01.000Z"));
        assert_eq!(out["maxValues"]["t"], json!("1970-01-01T00:00:01.001Z"));
        assert!(out["minValues"].get("f").is_none() && out["maxValues"].get("f").is_none());
        assert_eq!(out["nullCount"]["f"], json!(0));
        assert_eq!(out["minValues"]["d"], json!("1970-01-01"));
        assert_eq!(out["maxValues"]["d"], json!("2024-01-01"));
    }

    #[test]
    fn only_the_first_indexed_columns_get_statistics() {
        let columns: Vec<(String, ArrayRef)> = (0..INDEXED_COLUMNS + 3)
            .map(|i| {
                (
                    format!("c{i}"),
                    Arc::new(Int32Array::from(vec![i as i32])) as ArrayRef,
                )
            })
            .collect();
        let b = batch(
            columns
                .iter()
                .map(|(n, a)| (n.as_str(), a.clone()))
                .collect(),
        );
        let mut stats = FileStats::new(b.schema());
        stats.update(&b);
        let out = stats.finish();
        assert_eq!(
            out["nullCount"].as_object().map(|m| m.len()),
            Some(INDEXED_COLUMNS)
        );
        assert!(out["minValues"]
            .get(format!("c{INDEXED_COLUMNS}"))
            .is_none());
    }
}
