//! What a run would do, decided without running it: the selected assets in dependency order, each
//! with whether it runs and why (the reasons `assets status` gives). `materialize --dry-run` prints it.
//!
//! An asset runs when it is forced, missing or stale, or when an upstream in the same plan runs (its new
//! materialization makes this one stale). A fresh asset whose stale upstream is *not* selected is
//! skipped, exactly as `materialize` skips it.

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError};
use crate::key::AssetKey;
use crate::selection::select;
use crate::staleness::{freshness, short, Freshness};
use std::collections::{BTreeSet, HashSet};

/// One step of a plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedStep {
    /// The asset.
    pub key: AssetKey,
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

impl Engine {
    /// The plan `materialize` would execute for `selection`, without running or recording anything.
    pub async fn dry_run(
        &self,
        selection: Option<&str>,
        force: bool,
    ) -> Result<Vec<PlannedStep>, EngineError> {
        let selected = select_some(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let order = self
            .project
            .graph
            .topological_order()
            .ok_or_else(|| EngineError::Internal("validated graph has a cycle".into()))?;
        let mut runs: HashSet<&AssetKey> = HashSet::new();
        let mut plan = Vec::new();
        for key in order.into_iter().filter(|k| selected.contains(*k)) {
            let spec = &self.project.assets[key];
            let upstream_runs = spec.deps.iter().find(|d| runs.contains(d));
            let (run, reason) = match (force, freshness(spec, &latest), upstream_runs) {
                (true, _, _) => (true, "forced (--force)".to_string()),
                (_, Freshness::Missing, _) => (true, "never materialized".to_string()),
                (_, Freshness::Stale(r), _) => (true, r.join("; ")),
                (_, Freshness::Fresh, Some(up)) => (
                    true,
                    format!("upstream '{up}' runs first, so this becomes stale"),
                ),
                (_, Freshness::Fresh, None) => {
                    let run = latest
                        .get(key)
                        .map(|m| short(m.m.run_id.as_str()).to_string())
                        .unwrap_or_default();
                    (false, format!("fresh (materialized in run {run})"))
                }
            };
            if run {
                runs.insert(key);
            }
            plan.push(PlannedStep {
                key: key.clone(),
                run,
                reason,
            });
        }
        Ok(plan)
    }
}
