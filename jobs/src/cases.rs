//! What the kinds that run something per row share (agents, evals): an asset's rows as cases, each
//! with a unique id, and a program run on one case (its JSON on stdin, its answer on stdout).

use serde_json::{Map, Value};
use spine_engine::kinds::{StepContext, StepError};
use spine_engine::AssetKey;

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
    let fail = |d: datafusion::error::DataFusionError| {
        StepError::datafusion(&format!("reading the cases of '{table}'"), &d)
    };
    let batches = ctx
        .session
        .sql(&format!(
            "SELECT * FROM \"{}\"",
            table.as_str().replace('"', "\"\"")
        ))
        .await
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    let rows = spine_engine::kinds::rows_as_json(&batches)
        .map_err(|e| StepError::permanent(format!("reading the cases of '{table}': {e}")))?;
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
