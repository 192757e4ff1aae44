//! Record batches as JSON objects, one per row (Arrow's JSON writer: strings, numbers, booleans,
//! timestamps as RFC 3339 text; NULLs left out): what kinds hand to programs, stores and checks.

use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

/// The rows of `batches` as JSON objects; the error is a sentence.
pub fn rows_as_json(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>, String> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let mut w = arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    w.write_batches(&refs)
        .and_then(|_| w.finish())
        .map_err(|e| format!("cannot write the rows as JSON: {e}"))?;
    serde_json::from_slice(&w.into_inner()).map_err(|e| format!("cannot read the rows' JSON: {e}"))
}
