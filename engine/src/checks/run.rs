//! Running an asset's checks on one materialization: each check's failing-rows query over `this`
//! (the materialization's rows at its Delta version, only its partition's for a partition), counted,
//! with a few sample rows.

use super::{failing_rows_sql, CheckDef, CheckKind, CheckOutcome};
use crate::error::first_line;
use crate::instance::Instance;
use crate::key::{AssetKey, StepKey};
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::time::Instant;

/// Failing rows kept as samples.
const SAMPLES: usize = 5;

impl Instance {
    /// A session in which `this` is `step`'s rows at `version` (a partition's only).
    async fn checked_table(
        &self,
        step: &StepKey,
        target: &Checked,
    ) -> Result<SessionContext, String> {
        let ctx = crate::session::bounded(&self.project.config, Default::default());
        let spec = &self.project.assets[&step.asset];
        let provider = match target {
            Checked::Table(t) => t.clone(),
            Checked::Version(version) => self
                .warehouse
                .provider(
                    &step.asset,
                    Some(self.read_version(&step.asset, *version).await),
                    &ctx,
                )
                .await
                .map_err(|e| e.to_string())?
                .map(|(p, _)| p)
                .ok_or_else(|| format!("the table of {} is missing", step.asset))?,
        };
        let filter: Vec<Vec<(String, String)>> = match (&spec.partitions, &step.partition) {
            (Some(d), Some(p)) => vec![d.values(p)],
            _ => Vec::new(),
        };
        let registered = if filter.is_empty() {
            ctx.register_table("this", provider).map(|_| ())
        } else {
            crate::session::register_partitions(&ctx, "this", provider, &filter)
        };
        registered.map_err(|e| e.to_string())?;
        Ok(ctx)
    }
}

impl Instance {
    /// Runs `kind`'s own audit of the new materialization of `step` (`target`), with its published
    /// version `baseline` (if any) beside it; the results as check outcomes.
    pub async fn run_audit(
        &self,
        audits: &dyn crate::kinds::Audits,
        step: &StepKey,
        target: &Checked,
        baseline: Option<i64>,
    ) -> Vec<CheckOutcome> {
        let started = Instant::now();
        let results = async {
            let ctx = self.checked_table(step, target).await?;
            if let Some(v) = baseline {
                let base = self.checked_table(step, &Checked::Version(v)).await?;
                let table = base
                    .table_provider("this")
                    .await
                    .map_err(|e| e.to_string())?;
                ctx.register_table("baseline", table)
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(audits.audit(&ctx, baseline.is_some()).await)
        }
        .await;
        let duration_ms = started.elapsed().as_millis() as i64;
        match results {
            Ok(results) => results
                .into_iter()
                .map(|r| CheckOutcome {
                    name: r.name,
                    kind: "audit".into(),
                    severity: r.severity,
                    passed: r.passed,
                    failing_rows: i64::from(!r.passed),
                    samples: vec![serde_json::json!({"why": r.message, "details": r.details})],
                    duration_ms,
                    error: None,
                })
                .collect(),
            Err(e) => vec![CheckOutcome {
                name: "audit".into(),
                kind: "audit".into(),
                severity: spine_schemas::events::CheckSeverity::Error,
                passed: false,
                failing_rows: 0,
                samples: Vec::new(),
                duration_ms,
                error: Some(e),
            }],
        }
    }
}

/// The published Delta version (the newest of its partitions') of each asset `checks` read.
pub(crate) fn read_versions(
    checks: &[CheckDef],
    latest: &HashMap<StepKey, crate::store::Materialization>,
) -> HashMap<AssetKey, i64> {
    checks
        .iter()
        .filter_map(|c| c.kind.reads())
        .filter_map(|to| {
            latest
                .iter()
                .filter(|(k, _)| &k.asset == to)
                .map(|(_, m)| m.m.delta_version)
                .max()
                .map(|v| (to.clone(), v))
        })
        .collect()
}

fn to_json(batches: &[arrow::record_batch::RecordBatch]) -> Vec<serde_json::Value> {
    crate::kinds::rows_as_json(batches)
        .unwrap_or_default()
        .into_iter()
        .map(serde_json::Value::Object)
        .collect()
}

/// What checks run on: a Delta version of the asset's table, or (a source read in place) a table
/// over exactly what an observation recorded.
#[derive(Clone)]
pub enum Checked {
    /// The asset's table at this Delta version.
    Version(i64),
    /// This table.
    Table(std::sync::Arc<dyn datafusion::catalog::TableProvider>),
}

impl Instance {
    /// Runs `checks` on the materialization of `step` (`target`: its Delta version, or the observed
    /// table of a source) with `rows` rows;
    /// `previous` is the row count of the previous published materialization (`row_count`'s change),
    /// `others` the published Delta version of each asset `relationships` reads.
    pub async fn run_checks(
        &self,
        checks: &[CheckDef],
        step: &StepKey,
        target: Checked,
        rows: i64,
        previous: Option<i64>,
        others: &HashMap<AssetKey, i64>,
    ) -> Vec<CheckOutcome> {
        // One session with `this` for all the checks that query it (the table is opened once).
        let needs_table = checks
            .iter()
            .any(|c| !matches!(c.kind, CheckKind::RowCount { .. }));
        let ctx = match needs_table {
            true => Some(self.checked_table(step, &target).await),
            false => None,
        };
        let mut out = Vec::new();
        for c in checks {
            let started = Instant::now();
            let result = self
                .run_check(c, rows, previous, others, ctx.as_ref())
                .await;
            let (failing_rows, samples, error) = match result {
                Ok((n, s)) => (n, s, None),
                Err(e) => (0, Vec::new(), Some(e)),
            };
            out.push(CheckOutcome {
                name: c.name.clone(),
                kind: c.kind.as_str().to_string(),
                severity: c.severity,
                passed: error.is_none() && failing_rows == 0,
                failing_rows,
                samples,
                duration_ms: started.elapsed().as_millis() as i64,
                error,
            });
        }
        out
    }

    async fn run_check(
        &self,
        c: &CheckDef,
        rows: i64,
        previous: Option<i64>,
        others: &HashMap<AssetKey, i64>,
        ctx: Option<&Result<SessionContext, String>>,
    ) -> Result<(i64, Vec<serde_json::Value>), String> {
        if let CheckKind::RowCount {
            min,
            max,
            max_change_pct,
        } = &c.kind
        {
            let mut why = Vec::new();
            if min.is_some_and(|m| rows < m) {
                why.push(format!(
                    "{rows} rows, fewer than {}",
                    min.unwrap_or_default()
                ));
            }
            if max.is_some_and(|m| rows > m) {
                why.push(format!(
                    "{rows} rows, more than {}",
                    max.unwrap_or_default()
                ));
            }
            if let (Some(pct), Some(before)) = (max_change_pct, previous) {
                let change = if before == 0 {
                    if rows == 0 {
                        0.0
                    } else {
                        f64::INFINITY
                    }
                } else {
                    (rows - before).abs() as f64 * 100.0 / before as f64
                };
                if change > *pct {
                    why.push(format!(
                        "{before} → {rows} rows, a change of {change:.1}% (at most {pct}%)"
                    ));
                }
            }
            let samples = why
                .iter()
                .map(|w| serde_json::json!({ "why": w }))
                .collect::<Vec<_>>();
            return Ok((i64::from(!why.is_empty()), samples));
        }
        let ctx = match ctx {
            Some(Ok(ctx)) => ctx,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("internal: no table to check".into()),
        };
        if let Some(to) = c.kind.reads() {
            // The previous relationships check's `other`, if any, makes way.
            let _ = ctx.deregister_table("other");
            let v = *others
                .get(to)
                .ok_or_else(|| format!("'{to}' has never been materialized (published)"))?;
            let v = self.read_version(to, v).await;
            let p = self
                .warehouse
                .provider(to, Some(v), ctx)
                .await
                .map_err(|e| e.to_string())?
                .map(|(p, _)| p)
                .ok_or_else(|| format!("the table of {to} is missing"))?;
            ctx.register_table("other", p).map_err(|e| e.to_string())?;
        }
        let Some(sql) = failing_rows_sql(&c.kind, self.clock.now()) else {
            return Ok((0, Vec::new()));
        };
        let count = format!("SELECT COUNT(*) AS n FROM ({sql}) AS failing");
        let n = crate::session::first_i64(&query(ctx, &count).await?, 0);
        if n == 0 {
            return Ok((0, Vec::new()));
        }
        let samples = query(
            ctx,
            &format!("SELECT * FROM ({sql}) AS failing LIMIT {SAMPLES}"),
        )
        .await?;
        // Personal data in failing rows is masked before the samples are stored (`[guardrails]`).
        let mut samples = to_json(&samples);
        samples.iter_mut().for_each(crate::redact::redact_json);
        Ok((n, samples))
    }
}

async fn query(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<arrow::record_batch::RecordBatch>, String> {
    let df = ctx.sql(sql).await.map_err(|e| first_line(&e.to_string()))?;
    df.collect().await.map_err(|e| first_line(&e.to_string()))
}

impl Instance {
    /// Runs the checks of the selected assets on their latest published materializations (every
    /// partition's) and records the outcomes: `assets checks`. Returns each step key checked with its
    /// materialization id and outcomes, in key order.
    pub async fn check_latest(
        &self,
        selection: Option<&str>,
    ) -> Result<Vec<(StepKey, i64, Vec<CheckOutcome>)>, crate::error::EngineError> {
        let selected = crate::plan::select_some(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let mut steps: Vec<&StepKey> = latest
            .keys()
            .filter(|k| {
                selected.contains(&k.asset) && !self.project.assets[&k.asset].checks.is_empty()
            })
            .collect();
        steps.sort();
        let mut out = Vec::new();
        for step in steps {
            let m = &latest[step];
            let spec = &self.project.assets[&step.asset];
            let others = read_versions(&spec.checks, &latest);
            // A source read in place: the checks read exactly what its observation recorded.
            let target = match self.in_place(spec) {
                Some(config) => {
                    let ctx = crate::session::bounded(&self.project.config, Default::default());
                    match config
                        .recorded(&ctx, &m.m.metadata, &m.m.data_version)
                        .await
                    {
                        Ok(t) => Checked::Table(t),
                        Err(e) => {
                            return Err(crate::error::DefinitionError::new(
                                "E0240",
                                format!("source {}: {e}", step.asset),
                            )
                            .hint("observe it again (assets observe KEY), then check")
                            .into())
                        }
                    }
                }
                _ => Checked::Version(m.m.delta_version),
            };
            // `row_count`'s change is measured against the version before this one: not known here.
            let outcomes = self
                .run_checks(&spec.checks, step, target, m.m.row_count, None, &others)
                .await;
            self.store.record_checks(m.id, &outcomes).await?;
            out.push((step.clone(), m.id, outcomes));
        }
        Ok(out)
    }

    /// Publishes the materialization of `key` (partition `partition`) that wrote Delta `version`, with
    /// `reason` recorded: downstream assets read it from now on (if it is the newest published).
    /// E0231 when no materialization wrote that version; false when it was published already.
    pub async fn publish(
        &self,
        key: &AssetKey,
        partition: Option<&str>,
        version: i64,
        reason: &str,
    ) -> Result<bool, crate::error::EngineError> {
        let bad = |message: String, hint: &str| -> crate::error::EngineError {
            crate::error::DefinitionError::new("E0231", message)
                .asset(key.as_str())
                .hint(hint)
                .into()
        };
        if reason.trim().is_empty() {
            return Err(bad(
                format!("publish {key} needs a reason: --reason is empty"),
                "say why the held-back version may be read, e.g. --reason \"null ids fixed upstream\"; it is recorded",
            ));
        }
        let partitioned = self.known_asset(key)?.partitions.is_some();
        match (partitioned, partition) {
            (false, Some(p)) => {
                return Err(bad(
                    format!("{key} is not partitioned, but --partition {p} was given"),
                    "leave out --partition",
                ))
            }
            (true, None) => {
                return Err(bad(
                    format!("{key} is partitioned: publish needs --partition"),
                    "`assets partitions KEY` lists its partitions and their states",
                ))
            }
            _ => {}
        }
        let Some(m) = self
            .store
            .materialization_at(key, partition, version)
            .await?
        else {
            return Err(crate::error::DefinitionError::new(
                "E0231",
                format!(
                    "no materialization of {key}{} wrote Delta version {version}",
                    partition.map(|p| format!("[{p}]")).unwrap_or_default()
                ),
            )
            .hint("`assets sql \"SELECT delta_version, published FROM spine.materializations WHERE asset_key = 'KEY'\"` lists its versions; a partition needs --partition")
            .into());
        };
        Ok(self.store.publish(m.id, reason).await?)
    }
}
