//! The audit stage of a step: its output's shape is checked before the commit (a table nobody could
//! read is refused), its checks run on the committed version before it is published, and a version
//! a failed `error` check holds back ends the step with how to publish it.

use super::*;

/// Why the staged output of `key` may not be committed, as a permanent failure: no columns (Delta
/// cannot scan such a table) or two columns of one name (Delta compares names ignoring case).
pub(super) fn unreadable_output(
    key: &AssetKey,
    schema: &arrow::datatypes::Schema,
) -> Option<StepError> {
    if schema.fields().is_empty() {
        return Some(StepError::permanent(format!(
            "the output of '{key}' has no columns; nothing was committed — select at least one \
             column (a table without columns cannot be read)"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let name = schema
        .fields()
        .iter()
        .map(|f| f.name())
        .find(|n| !seen.insert(n.to_lowercase()))?;
    Some(StepError::permanent(format!(
        "the output of '{key}' has two columns named '{name}' (Delta column names ignore case); \
         nothing was committed — alias one of them (a `SELECT *` over a join repeats the join key)"
    )))
}

impl Executor {
    /// Runs `spec`'s checks on a new materialization of `step` (`target`, `rows` rows) before it is
    /// published: `row_count`'s change against the step's last published one, `relationships`
    /// against the published versions of the assets they read.
    pub(super) async fn audit(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
        target: crate::checks::Checked,
        rows: i64,
    ) -> Vec<crate::checks::CheckOutcome> {
        let audits = self
            .kinds
            .get(&spec.kind)
            .and_then(|k| k.audits(&spec.body));
        if spec.checks.is_empty() && audits.is_none() {
            return Vec::new();
        }
        let (previous, others, baseline) = {
            let latest = self.run.latest.lock().expect("latest lock");
            let others = crate::checks::read_versions(&spec.checks, &latest);
            let published = latest.get(step);
            (
                published.map(|m| m.m.row_count),
                others,
                published.map(|m| m.m.delta_version).filter(|v| *v >= 0),
            )
        };
        let mut out = Vec::new();
        if !spec.checks.is_empty() {
            out = self
                .run_checks(&spec.checks, step, target.clone(), rows, previous, &others)
                .await;
        }
        if let Some(a) = audits {
            out.extend(self.run_audit(a, step, &target, baseline).await);
        }
        out
    }

    /// Ends a step whose new materialization failed an `error` check: it is recorded unpublished
    /// (downstream keeps reading the last published one) and the step fails, saying how to publish it.
    pub(super) async fn end_unpublished(
        &self,
        key: &StepKey,
        mut report: StepReport,
        m: NewMaterialization,
    ) -> Result<StepReport, crate::error::EngineError> {
        let (what, flag) = if m.delta_version < 0 {
            ("the observation".to_string(), String::new())
        } else {
            (
                format!("Delta version {}", m.delta_version),
                format!(" --version {}", m.delta_version),
            )
        };
        let flag = match &key.partition {
            Some(p) => format!("{flag} --partition {p}"),
            None => flag,
        };
        let downstream = if self
            .run
            .latest
            .lock()
            .expect("latest lock")
            .contains_key(key)
        {
            "downstream assets read the last published one"
        } else {
            "no version was published before, so downstream assets have none to read"
        };
        let msg = format!(
            "check failed: {}; {what} is kept unpublished and {downstream} (after a look: assets \
             publish {}{flag} --reason \"…\")",
            crate::checks::CheckOutcome::blocking(&m.checks),
            key.asset,
        );
        tracing::error!(target: "spine::outcome", "{msg}");
        report.rows = Some(m.row_count);
        report.delta_version = (m.delta_version >= 0).then_some(m.delta_version);
        report.failure_class = Some(FailureClass::Permanent);
        report.status = StepStatus::Failed;
        report.error = Some(msg.clone());
        self.finish(
            key,
            (StepStatus::Failed, Some(FailureClass::Permanent)),
            Some(msg),
            None,
            Some(m),
        )
        .await?;
        Ok(report)
    }
}
