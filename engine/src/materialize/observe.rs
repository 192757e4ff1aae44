//! Observing a source asset (`kind: source` without `snapshot`): the step records which files the
//! source is now — paths, sizes, modification times, a data version hashed from them, the schema and
//! the row count — without copying them. An unchanged observation is not recorded again, so only a
//! real change makes downstream assets stale. Downstream steps read exactly the recorded files
//! ([`Engine::source_table`]).

use super::*;
use crate::kinds::source::{observation_version, ObservedFile, SourceConfig};

impl Engine {
    pub(super) async fn observe_step(
        &self,
        state: &RunState,
        spec: &crate::project::AssetSpec,
        key: &StepKey,
        config: &SourceConfig,
    ) -> Result<StepReport, EngineError> {
        let step_id = key.to_string();
        let mut report = StepReport::new(key);
        report.attempts = 1;
        let ev = NewEvent::of(
            &state.run_id,
            Some(&step_id),
            format!("{key} observation started"),
            &Event::StepStarted {
                attempt: 1,
                max_attempts: 1,
            },
        );
        let seq = match self.start_claimed(state, key, 1, ev).await? {
            Ok(seq) => seq,
            Err(ended) => return Ok(ended),
        };
        if let Some(o) = &state.observer {
            o.step_started(key, 1);
        }
        let previous = state.latest.lock().expect("latest lock").get(key).map(|m| {
            (
                m.m.data_version.clone(),
                m.m.code_version.clone(),
                m.m.run_id.clone(),
            )
        });
        let observed = async {
            let files = config.files()?;
            let version = observation_version(&files);
            if let Some((v, code, run)) = &previous {
                if *v == version && *code == spec.code_version {
                    return Ok(Err(run.clone()));
                }
            }
            let ctx = crate::session::sibling(&state.session);
            let table = config.table(&ctx, &files).await?;
            let schema = table.schema();
            let rows = ctx
                .read_table(table)
                .map_err(|e| e.to_string())?
                .count()
                .await
                .map_err(|e| {
                    format!(
                        "cannot read the source: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                })?;
            Ok::<_, String>(Ok((files, version, schema, rows as i64)))
        }
        .await;
        match observed {
            Err(msg) => {
                report.failure_class = Some(FailureClass::Permanent);
                self.end_step(state, report, StepStatus::Failed, Some(msg), None)
                    .await
            }
            Ok(Err(run)) => {
                let reason = format!(
                    "unchanged: the same files, sizes and modification times as observed in run {}",
                    short(run.as_str())
                );
                self.end_step(state, report, StepStatus::UpToDate, None, Some(reason))
                    .await
            }
            Ok(Ok((files, version, schema, rows))) => {
                let m = NewMaterialization {
                    asset_key: key.asset.clone(),
                    partition_key: None,
                    run_id: state.run_id.clone(),
                    step_id: step_id.clone(),
                    seq,
                    delta_version: -1,
                    row_count: rows,
                    schema: super::inputs::schema_json(&schema),
                    data_version: version,
                    code_version: spec.code_version.clone(),
                    upstream: Vec::new(),
                    metadata: serde_json::json!({ "observed_files": files }),
                    published: true,
                    checks: Vec::new(),
                    columns: Vec::new(),
                };
                report.rows = Some(rows);
                report.status = StepStatus::Succeeded;
                self.record_success(state, key, m).await?;
                Ok(report)
            }
        }
    }

    /// The files of a source's observation `m`, as a table; a file that changed since (size or
    /// modification time) or went away fails the read, naming it.
    pub(super) async fn source_table(
        &self,
        config: &SourceConfig,
        m: &Materialization,
        ctx: &SessionContext,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>, StepError> {
        let files: Vec<ObservedFile> = serde_json::from_value(
            m.m.metadata
                .get("observed_files")
                .cloned()
                .unwrap_or_default(),
        )
        .map_err(|e| {
            StepError::permanent(format!(
                "the observation of {} is unreadable: {e}",
                m.m.asset_key
            ))
        })?;
        for f in &files {
            let now = ObservedFile::stamp(std::path::Path::new(&f.path));
            if now != Some((f.size, f.modified_ms)) {
                return Err(StepError::permanent(format!(
                    "source {}: {} {} since it was observed; observe it again (assets observe {}) so \
                     that what is read is what was recorded",
                    m.m.asset_key,
                    f.path,
                    if now.is_none() { "is gone" } else { "changed" },
                    m.m.asset_key
                )));
            }
        }
        config
            .table(ctx, &files)
            .await
            .map_err(StepError::permanent)
    }
}
