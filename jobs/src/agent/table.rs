//! The agent's table: one row per case —
//! `case_id, output, <state fields>, nodes, prompt_tokens, completion_tokens, cost, latency_ms,
//! trace_id, error, path, approval` (the human decision a case went on by, as JSON) — its schema known from the definition alone (`assets check`).

use super::case::CaseResult;
use super::config::{AgentConfig, FieldType, HEAD, TAIL};
use crate::cases::text;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use spine_engine::kinds::StepError;
use std::sync::Arc;

fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::String | FieldType::Json => DataType::Utf8,
        FieldType::Int => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Bool => DataType::Boolean,
    }
}

/// The table's schema.
pub fn schema(c: &AgentConfig) -> Schema {
    let mut fields = vec![
        Field::new(HEAD[0], DataType::Utf8, false),
        Field::new(HEAD[1], DataType::Utf8, true),
    ];
    for (name, t) in &c.state {
        fields.push(Field::new(name, arrow_type(*t), true));
    }
    for name in TAIL {
        let (t, null) = match name {
            "cost" => (DataType::Float64, false),
            "trace_id" | "path" => (DataType::Utf8, false),
            "error" | "approval" => (DataType::Utf8, true),
            _ => (DataType::Int64, false),
        };
        fields.push(Field::new(name, t, null));
    }
    Schema::new(fields)
}

/// The rows of `cases`.
pub fn batch(c: &AgentConfig, cases: &[CaseResult]) -> Result<RecordBatch, StepError> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            cases.iter().map(|r| r.case_id.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            cases.iter().map(|r| text(r.state.get(&c.output))),
        )),
    ];
    for (name, t) in &c.state {
        let vals = cases.iter().map(|r| r.state.get(name));
        columns.push(match t {
            FieldType::String | FieldType::Json => Arc::new(StringArray::from_iter(vals.map(text))),
            FieldType::Int => Arc::new(Int64Array::from_iter(vals.map(|v| v?.as_i64()))),
            FieldType::Float => Arc::new(Float64Array::from_iter(vals.map(|v| v?.as_f64()))),
            FieldType::Bool => Arc::new(BooleanArray::from_iter(vals.map(|v| v?.as_bool()))),
        });
    }
    let int = |f: fn(&CaseResult) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(cases.iter().map(f)))
    };
    columns.push(int(|r| r.path.len() as i64));
    columns.push(int(|r| r.usage.prompt_tokens));
    columns.push(int(|r| r.usage.completion_tokens));
    columns.push(Arc::new(Float64Array::from_iter_values(
        cases.iter().map(|r| r.usage.cost),
    )));
    columns.push(int(|r| r.usage.latency_ms));
    columns.push(Arc::new(StringArray::from_iter_values(
        cases.iter().map(|r| r.trace_id.as_str()),
    )));
    columns.push(Arc::new(StringArray::from_iter(
        cases.iter().map(|r| r.error.as_deref()),
    )));
    columns.push(Arc::new(StringArray::from_iter_values(
        cases.iter().map(|r| r.path.join(" > ")),
    )));
    columns.push(Arc::new(StringArray::from_iter(
        cases
            .iter()
            .map(|r| r.approval.as_ref().map(|a| a.to_string())),
    )));
    RecordBatch::try_new(Arc::new(schema(c)), columns)
        .map_err(|e| StepError::permanent(format!("cannot build the agent's rows: {e}")))
}
