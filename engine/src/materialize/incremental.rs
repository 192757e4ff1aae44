//! Incremental assets (`incremental: {strategy: append, watermark: COLUMN}`): a run appends the rows
//! its query returns to the published table instead of replacing it. `{{ watermark }}` is the
//! column's maximum in the published version the run appends to. The first run, and the first after
//! the asset's code changed, rebuild the table (the watermark is NULL).
//!
//! An appended version's data version chains the previous one with the appended rows' hash, and its
//! row count is the table's: the materialization describes the whole version, as for any asset.

use super::*;

impl Executor {
    /// The published materialization an incremental step appends to: the step key's latest, when it
    /// was computed by the same code. None: not incremental, or a rebuild.
    pub(super) fn incremental_base(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
    ) -> Option<Materialization> {
        spec.incremental.as_ref()?;
        if self.run.full_refresh {
            return None;
        }
        self.run
            .latest
            .lock()
            .expect("latest lock")
            .get(step)
            .filter(|m| m.m.code_version == spec.code_version && m.m.delta_version >= 0)
            .cloned()
    }

    /// `{{ watermark }}`: the maximum of `column` in version `version` of `key`'s table, as a literal
    /// of the column's type (`NULL` when the table has no non-NULL value).
    pub(super) async fn watermark(
        &self,
        key: &AssetKey,
        version: i64,
        column: &str,
    ) -> Result<String, StepError> {
        let ctx = crate::session::bounded(&self.project.config, Default::default());
        let version = self.read_version(key, version).await;
        let (provider, _) = self
            .warehouse
            .provider(key, Some(version), &ctx)
            .await
            .map_err(StepError::retryable)?
            .ok_or_else(|| StepError::permanent(format!("the table of {key} is missing")))?;
        let columns: Vec<String> = provider
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if !columns.iter().any(|c| c == column) {
            return Err(StepError::permanent(format!(
                "the watermark column '{column}' is not in the table of {key} (its columns: {}); \
                 name one of them in `incremental: {{watermark: …}}`",
                columns.join(", ")
            )));
        }
        ctx.register_table("t", provider)
            .map_err(|e| StepError::datafusion("reading the watermark", &e))?;
        let c = format!("\"{}\"", column.replace('"', "\"\""));
        let sql =
            format!("SELECT CAST(MAX({c}) AS VARCHAR) AS w, arrow_typeof(MAX({c})) AS t FROM t");
        let batches = ctx
            .sql(&sql)
            .await
            .map_err(|e| StepError::datafusion("reading the watermark", &e))?
            .collect()
            .await
            .map_err(|e| StepError::datafusion("reading the watermark", &e))?;
        let text = |i: usize| -> Option<String> {
            let b = batches.first()?;
            let col = arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::Utf8).ok()?;
            let col = col
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()?
                .clone();
            use arrow::array::Array;
            (!col.is_empty() && !col.is_null(0)).then(|| col.value(0).to_string())
        };
        Ok(match (text(0), text(1)) {
            (Some(w), Some(t)) => format!(
                "arrow_cast('{}', '{}')",
                w.replace('\'', "''"),
                t.replace('\'', "''")
            ),
            _ => "NULL".to_string(),
        })
    }
}

/// The row count and data version of `base` with `staged` appended.
pub(super) fn appended(base: &Materialization, staged: &Staged) -> (i64, String) {
    let chained = format!("{}+{}", base.m.data_version, staged.data_version);
    (
        base.m.row_count + staged.row_count,
        short_hash(chained.as_bytes()),
    )
}
