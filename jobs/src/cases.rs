//! What the kinds that run something per row share (agents, evals): an asset's rows as cases, each
//! with a unique id, and a program run on one case (its JSON on stdin, its answer on stdout).

use serde_json::{Map, Value};
use spine_engine::kinds::{StepContext, StepError};
use spine_engine::AssetKey;

/// A digest of the upstream versions a step reads: part of what identifies its work (an agent's
/// checkpoints, a workflow's id).
pub fn inputs_digest(ctx: &StepContext) -> String {
    let mut read: Vec<String> = ctx
        .upstream
        .iter()
        .map(|u| {
            let p = u
                .partition
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            format!("{}[{p}]@{}", u.key, u.delta_version)
        })
        .collect();
    read.sort();
    spine_engine::hash::short_hash(read.join("\n").as_bytes())
}

/// The rows of `sql` (a query over the step's upstreams, table references rewritten) as JSON
/// objects; `what` names it in errors.
pub async fn query_rows(
    ctx: &StepContext,
    sql: &str,
    what: &str,
) -> Result<Vec<Map<String, Value>>, StepError> {
    let fail = |d: datafusion::error::DataFusionError| StepError::datafusion(what, &d);
    let batches = ctx
        .session
        .sql(sql)
        .await
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    spine_engine::kinds::rows_as_json(&batches)
        .map_err(|e| StepError::permanent(format!("{what}: {e}")))
}

/// Rows from JSON: an array of objects is rows, an object one row, anything else one row with a
/// `result` column. Column types are inferred from the values.
pub fn json_batch(v: &Value) -> Result<arrow::record_batch::RecordBatch, String> {
    let rows: Vec<Value> = match v {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => a.clone(),
        Value::Object(_) => vec![v.clone()],
        other => vec![serde_json::json!({ "result": other })],
    };
    let schema = arrow::json::reader::infer_json_schema_from_iterator(rows.iter().map(Ok))
        .map_err(|e| format!("cannot tell the result's columns: {e}"))?;
    let mut decoder = arrow::json::ReaderBuilder::new(std::sync::Arc::new(schema))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    decoder
        .serialize(&rows)
        .map_err(|e| format!("cannot read the result as rows: {e}"))?;
    decoder
        .flush()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the result has no rows".to_string())
}

/// A value as text (none for null or missing).
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The rows of `table` (registered in the step's session) with the ids in their `id` column, which
/// must be there and unique (a permanent failure otherwise).
pub async fn read(
    ctx: &StepContext,
    table: &AssetKey,
    id: &str,
) -> Result<Vec<(String, Map<String, Value>)>, StepError> {
    let sql = format!("SELECT * FROM \"{}\"", table.as_str().replace('"', "\"\""));
    let rows = query_rows(ctx, &sql, &format!("reading the cases of '{table}'")).await?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(case_id) = text(r.get(id)) else {
            return Err(StepError::permanent(format!(
                "a case of '{table}' has no `{id}` (the case id column): every case needs an id"
            )));
        };
        if !seen.insert(case_id.clone()) {
            return Err(StepError::permanent(format!(
                "case id '{case_id}' appears twice in '{table}': case ids are unique"
            )));
        }
        out.push((case_id, r));
    }
    Ok(out)
}

/// Runs `argv` in `dir` with `input` on stdin: its stdout, trimmed, or why it failed (the end of
/// its stderr, redacted).
pub async fn pipe(argv: &[String], dir: &std::path::Path, input: &str) -> Result<String, String> {
    use tokio::io::AsyncWriteExt;
    let Some((program, args)) = argv.split_first() else {
        return Err("an empty command".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start '{program}': {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("'{program}': {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        let tail = &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(300))..];
        return Err(spine_engine::redact::redacted(format!(
            "'{program}' exited with {}: {tail}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_results_become_rows() {
        let b = json_batch(&json!([{"id": 1, "score": 0.5}, {"id": 2, "score": 0.75}])).unwrap();
        assert_eq!((b.num_rows(), b.num_columns()), (2, 2));
        assert_eq!(json_batch(&json!({"total": 3})).unwrap().num_rows(), 1);
        let b = json_batch(&json!(42)).unwrap();
        assert_eq!(b.schema().field(0).name(), "result");
        assert_eq!(
            json_batch(&json!([])).unwrap().schema().field(0).name(),
            "result"
        );
    }
}
