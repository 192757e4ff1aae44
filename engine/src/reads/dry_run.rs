//! `materialize --dry-run`: the plan a run would execute, each step with whether it would run and
//! why, read from the store without recording anything.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::key::{AssetKey, StepKey};
use crate::partitions::PartitionSelection;
use crate::plan::{select_some, steps_in_order, PlannedStep};
use crate::staleness::{freshness, short, Freshness};
use std::collections::HashSet;

impl Engine {
    /// The plan `materialize` would execute for `selection`, without running or recording anything.
    pub async fn dry_run(
        &self,
        selection: Option<&str>,
        force: bool,
        partitions: &PartitionSelection,
    ) -> Result<Vec<PlannedStep>, EngineError> {
        let selected = select_some(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let mut runs: HashSet<StepKey> = HashSet::new();
        let mut plan = Vec::new();
        let steps = steps_in_order(&self.project, &selected, partitions, self.clock.now())?;
        let mut runs_of: HashSet<&AssetKey> = HashSet::new();
        for step in steps {
            let spec = &self.project.assets[&step.asset];
            let upstream_runs = crate::upstream::upstreams(&self.project, spec, &step)
                .into_iter()
                .find_map(|u| match u.steps() {
                    Some(steps) => steps
                        .into_iter()
                        .find(|s| runs.contains(s))
                        .map(|s| s.to_string()),
                    None => runs_of.contains(u.asset()).then(|| u.asset().to_string()),
                });
            let fresh = freshness(&self.project, spec, &step, &latest);
            let (run, reason) = match (force, fresh, upstream_runs) {
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
                runs_of.insert(&spec.key);
                runs.insert(step);
            }
        }
        Ok(plan)
    }
}
