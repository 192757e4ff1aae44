//! Observing a source asset (`kind: source` without `snapshot`): the step records which files the
//! source is now — paths, sizes, modification times, a data version hashed from them, the schema and
//! the row count — without copying them. An unchanged observation is not recorded again, so only a
//! real change makes downstream assets stale. Downstream steps read exactly the recorded files
//! ([`Instance::source_table`]).

use super::*;
use crate::kinds::ReadsInPlace;

impl Executor {
    pub(super) async fn observe_step(
        &self,
        spec: &crate::project::AssetSpec,
        key: &StepKey,
        config: &dyn ReadsInPlace,
    ) -> Result<StepReport, EngineError> {
        let step_id = key.to_string();
        let mut report = StepReport::new(key);
        report.attempts = 1;
        let ev = NewEvent::of(
            &self.run.run_id,
            Some(&step_id),
            format!("{key} observation started"),
            &Event::StepStarted {
                attempt: 1,
                max_attempts: 1,
            },
        );
        let seq = match self.start_claimed(key, 1, ev).await? {
            Ok(started) => started.seq,
            Err(ended) => return Ok(ended),
        };
        if let Some(o) = &self.run.observer {
            o.step_started(key, 1);
        }
        let previous = self
            .run
            .latest
            .lock()
            .expect("latest lock")
            .get(key)
            .map(|m| {
                (
                    m.m.data_version.clone(),
                    m.m.code_version.clone(),
                    m.m.run_id.clone(),
                )
            });
        let observed = async {
            let observed = config.look().await?;
            let version = observed.data_version.clone();
            if let Some((v, code, run)) = &previous {
                if *v == version && *code == spec.code_version {
                    return Ok(Err(run.clone()));
                }
            }
            let ctx = crate::session::sibling(&self.run.session);
            let table = config.table(&ctx, &observed).await?;
            let schema = table.schema();
            let rows = ctx
                .read_table(table.clone())
                .map_err(|e| e.to_string())?
                .count()
                .await
                .map_err(|e| {
                    format!(
                        "cannot read the source: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                })?;
            Ok::<_, String>(Ok((observed, version, schema, rows as i64, table)))
        }
        .await;
        match observed {
            Err(msg) => {
                report.failure_class = Some(FailureClass::Permanent);
                self.end_step(report, StepStatus::Failed, Some(msg), None)
                    .await
            }
            Ok(Err(run)) => {
                let reason = format!(
                    "unchanged: the same data version (files, sizes and modification times, or query rows) as observed in run {}",
                    short(run.as_str())
                );
                self.end_step(report, StepStatus::UpToDate, None, Some(reason))
                    .await
            }
            Ok(Ok((observed, version, schema, rows, table))) => {
                // Audit before publishing, as for any asset: the checks read exactly what was observed.
                let checks = self
                    .audit(spec, key, crate::checks::Checked::Table(table), rows)
                    .await;
                let published = !checks.iter().any(|c| c.blocks());
                let m = NewMaterialization {
                    asset_key: key.asset.clone(),
                    partition_key: None,
                    run_id: self.run.run_id.clone(),
                    step_id: step_id.clone(),
                    seq,
                    delta_version: -1,
                    row_count: rows,
                    schema: super::inputs::schema_json(&schema),
                    data_version: version,
                    code_version: spec.code_version.clone(),
                    upstream: Vec::new(),
                    metadata: observed.metadata.clone(),
                    published,
                    checks,
                    columns: Vec::new(),
                };
                if !published {
                    return self.end_unpublished(key, report, m).await;
                }
                report.rows = Some(rows);
                report.status = StepStatus::Succeeded;
                self.record_success(key, m).await?;
                Ok(report)
            }
        }
    }

    /// What a source's observation `m` recorded, as a table; a file that changed since (size or
    /// modification time) or went away, or a query whose rows changed, fails the read, naming it.
    pub(super) async fn source_table(
        &self,
        config: &dyn ReadsInPlace,
        m: &Materialization,
        ctx: &SessionContext,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>, StepError> {
        let key = &m.m.asset_key;
        config
            .recorded(ctx, &m.m.metadata, &m.m.data_version)
            .await
            .map_err(|e| {
                StepError::permanent(format!(
                    "source {key}: {e}; observe it again (assets observe {key}) so that what is read \
                     is what was recorded"
                ))
            })
    }
}
