//! What a run would do, decided without running it: the selected assets in dependency order, each
//! with whether it runs and why (the reasons `assets status` gives). `materialize --dry-run` prints it.
//!
//! An asset runs when it is forced, missing or stale, or when an upstream in the same plan runs (its new
//! materialization makes this one stale). A fresh asset whose stale upstream is *not* selected is
//! skipped, exactly as `materialize` skips it.

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError};
use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::project::{AssetSpec, Project};
use crate::selection::select;
use crate::staleness::{freshness, short, Freshness};
use std::collections::{BTreeSet, HashSet};

/// One step of a plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedStep {
    /// The asset.
    pub key: AssetKey,
    /// The partition, for a step of a partitioned asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionKey>,
    /// Whether `materialize` would compute it.
    pub run: bool,
    /// Why it runs or is skipped.
    pub reason: String,
}

/// The selected assets, or E0403 when the selection matches none (so no empty run is recorded).
pub fn select_some(
    project: &crate::project::Project,
    selection: Option<&str>,
) -> Result<BTreeSet<AssetKey>, DefinitionError> {
    let selected = select(project, selection)?;
    if selected.is_empty() {
        return Err(DefinitionError::new(
            "E0403",
            format!(
                "the selection '{}' matched no asset; nothing was run",
                selection.unwrap_or("*")
            ),
        )
        .hint("`assets list` shows keys, groups, tags and kinds to select from"));
    }
    Ok(selected)
}

/// The steps of a run over `selected`, in dependency order: one per asset today (the step key without a
/// partition); partitioned assets will contribute one step per selected partition.
pub(crate) fn steps_in_order(
    project: &Project,
    selected: &BTreeSet<AssetKey>,
) -> Result<Vec<StepKey>, EngineError> {
    Ok(project
        .graph
        .topological_order()
        .ok_or_else(|| EngineError::Internal("validated graph has a cycle".into()))?
        .into_iter()
        .filter(|k| selected.contains(*k))
        .map(|k| StepKey::whole(k.clone()))
        .collect())
}

/// The step keys step `step` of `spec` reads: every upstream asset whole. This is the one place a
/// partition mapping (same partition, a window of partitions, all of them) decides which partitions
/// of an upstream a partition depends on.
pub(crate) fn upstream_steps(spec: &AssetSpec, step: &StepKey) -> Vec<StepKey> {
    debug_assert_eq!(spec.key, step.asset);
    spec.deps
        .iter()
        .map(|d| StepKey::whole(d.clone()))
        .collect()
}

impl Engine {
    /// The plan `materialize` would execute for `selection`, without running or recording anything.
    pub async fn dry_run(
        &self,
        selection: Option<&str>,
        force: bool,
    ) -> Result<Vec<PlannedStep>, EngineError> {
        let selected = select_some(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let mut runs: HashSet<StepKey> = HashSet::new();
        let mut plan = Vec::new();
        for step in steps_in_order(&self.project, &selected)? {
            let spec = &self.project.assets[&step.asset];
            let upstream_runs = upstream_steps(spec, &step)
                .into_iter()
                .find(|u| runs.contains(u));
            let (run, reason) = match (force, freshness(spec, &step, &latest), upstream_runs) {
                (true, _, _) => (true, "forced (--force)".to_string()),
                (_, Freshness::Missing, _) => (true, "never materialized".to_string()),
                (_, Freshness::Stale(r), _) => (true, r.join("; ")),
                (_, Freshness::Fresh, Some(up)) => (
                    true,
                    format!("upstream '{up}' runs first, so this becomes stale"),
                ),
                (_, Freshness::Fresh, None) => {
                    let run = latest
                        .get(&step)
                        .map(|m| short(m.m.run_id.as_str()).to_string())
                        .unwrap_or_default();
                    (false, format!("fresh (materialized in run {run})"))
                }
            };
            plan.push(PlannedStep {
                key: step.asset.clone(),
                partition: step.partition.clone(),
                run,
                reason,
            });
            if run {
                runs.insert(step);
            }
        }
        Ok(plan)
    }
}
