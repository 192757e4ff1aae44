//! Making batches storable in Delta: Arrow types Delta lacks are mapped to ones it has, and batches are
//! cast to the table schema as they stream in.

use super::*;

/// Maps Arrow types Delta cannot store to ones it can (unsigned → wider signed, views → plain, timestamps →
/// microseconds UTC). Returns the schema and whether any column changes.
pub fn delta_compatible(schema: &SchemaRef) -> (SchemaRef, bool) {
    let mut changed = false;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let t = match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
                DataType::UInt8 => DataType::Int16,
                DataType::UInt16 => DataType::Int32,
                DataType::UInt32 | DataType::UInt64 => DataType::Int64,
                DataType::Float16 => DataType::Float32,
                DataType::Timestamp(u, tz) if *u != TimeUnit::Microsecond || tz.is_none() => {
                    DataType::Timestamp(
                        TimeUnit::Microsecond,
                        Some(tz.clone().unwrap_or_else(|| "UTC".into())),
                    )
                }
                DataType::Dictionary(_, v) => match v.as_ref() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    other => other.clone(),
                },
                DataType::Null => DataType::Utf8,
                other => other.clone(),
            };
            if &t != f.data_type() {
                changed = true;
            }
            Field::new(f.name(), t, true).with_metadata(f.metadata().clone())
        })
        .collect();
    // Delta columns are nullable unless declared otherwise; keep everything nullable for evolvability.
    if schema.fields().iter().any(|f| !f.is_nullable()) {
        changed = true;
    }
    (Arc::new(Schema::new(fields)), changed)
}

/// The next non-empty batch of `input`, made Delta-compatible by `prepare`.
pub(super) async fn next_rows(
    input: &mut SendableRecordBatchStream,
    prepare: &impl Fn(RecordBatch) -> Result<RecordBatch, WarehouseError>,
) -> Result<Option<RecordBatch>, WarehouseError> {
    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            return Ok(Some(prepare(batch)?));
        }
    }
    Ok(None)
}

pub(super) fn cast_batch(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, WarehouseError> {
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match (c.data_type(), f.data_type()) {
            // Naive timestamps are stored as UTC: change the unit, then only relabel the zone. (Arrow's
            // cast would resolve every value against the zone's offset rules, one by one.)
            (
                DataType::Timestamp(_, None),
                DataType::Timestamp(TimeUnit::Microsecond, Some(tz)),
            ) if tz.as_ref() == "UTC" => {
                let naive =
                    arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let micros = naive
                    .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                    .clone()
                    .with_timezone(tz.clone());
                Ok(Arc::new(micros) as arrow::array::ArrayRef)
            }
            _ => arrow::compute::cast(c, f.data_type()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray, TimestampSecondArray};

    #[test]
    fn naive_timestamps_are_stored_as_the_same_instants_in_utc() {
        let input = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Second, None),
            false,
        )]));
        let (schema, needs_cast) = delta_compatible(&input);
        assert!(needs_cast);
        let seconds: ArrayRef =
            Arc::new(TimestampSecondArray::from(vec![0, 1_700_000_000, -86_400]));
        let batch = RecordBatch::try_new(input, vec![seconds]).expect("batch");
        let cast = cast_batch(&batch, &schema).expect("cast");
        let got = cast
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let want = TimestampMicrosecondArray::from(vec![0, 1_700_000_000_000_000, -86_400_000_000])
            .with_timezone("UTC");
        assert_eq!(got, &want);
        assert_eq!(cast.schema().field(0).data_type(), want.data_type());
    }
}
