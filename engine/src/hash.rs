//! Hashes: code versions and data versions.
//!
//! A data version must change exactly when the data changes, independent of how the rows were split into
//! batches or the order they arrived in (a table is a multiset of rows). Each row is encoded with Arrow's
//! row format (a canonical byte encoding), hashed with XXH3-128, and the row hashes are summed (wrapping);
//! the schema and row count are mixed in at the end.

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// A 16-hex-digit hash of `bytes` (for code versions).
pub fn short_hash(bytes: &[u8]) -> String {
    format!("{:016x}", xxh3_64(bytes))
}

/// HMAC-SHA256 of `msg` under `key` (RFC 2104), as lowercase hex: event signatures.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

/// Order-independent content hash of a stream of record batches.
pub struct DataHasher {
    converter: Option<RowConverter>,
    sum: u128,
    rows: u64,
    schema: SchemaRef,
}

impl DataHasher {
    /// A hasher for batches of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let fields = schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        // Types the row format cannot encode fall back to hashing their debug form per row.
        let converter = RowConverter::new(fields).ok();
        DataHasher {
            converter,
            sum: 0,
            rows: 0,
            schema,
        }
    }

    /// Adds a batch.
    pub fn update(&mut self, batch: &RecordBatch) -> Result<(), arrow::error::ArrowError> {
        self.rows += batch.num_rows() as u64;
        let cols: Vec<ArrayRef> = batch.columns().to_vec();
        match &self.converter {
            Some(c) => {
                let rows = c.convert_columns(&cols)?;
                for r in rows.iter() {
                    self.sum = self.sum.wrapping_add(xxh3_128(r.as_ref()));
                }
            }
            None => {
                let fmt = arrow::util::display::ArrayFormatter::try_new;
                let opts = arrow::util::display::FormatOptions::default();
                let formatters = cols
                    .iter()
                    .map(|c| fmt(c.as_ref(), &opts))
                    .collect::<Result<Vec<_>, _>>()?;
                for i in 0..batch.num_rows() {
                    let mut s = String::new();
                    for f in &formatters {
                        s.push_str(&f.value(i).to_string());
                        s.push('\u{1f}');
                    }
                    self.sum = self.sum.wrapping_add(xxh3_128(s.as_bytes()));
                }
            }
        }
        Ok(())
    }

    /// The data version: 32 hex digits.
    pub fn finish(&self) -> String {
        let mut tail = format!("{:?}", self.schema.fields()).into_bytes();
        tail.extend_from_slice(&self.rows.to_le_bytes());
        tail.extend_from_slice(&self.sum.to_le_bytes());
        format!("{:032x}", xxh3_128(&tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2, and test case 6 (a key longer than the block).
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha256_hex(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap()
    }

    fn version(batches: &[RecordBatch]) -> String {
        let mut h = DataHasher::new(batches[0].schema());
        for b in batches {
            h.update(b).unwrap();
        }
        h.finish()
    }

    #[test]
    fn independent_of_batching_and_order_but_not_content() {
        let whole = version(&[batch(&[1, 2, 3], &["a", "b", "c"])]);
        let split = version(&[batch(&[3], &["c"]), batch(&[1, 2], &["a", "b"])]);
        assert_eq!(whole, split);
        let changed = version(&[batch(&[1, 2, 3], &["a", "b", "d"])]);
        assert_ne!(whole, changed);
        let dup = version(&[batch(&[1, 2, 3, 3], &["a", "b", "c", "c"])]);
        assert_ne!(whole, dup);
    }
}
