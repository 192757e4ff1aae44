//! What a run would do, decided without running it: the selected assets in dependency order, each
//! with whether it runs and why (the reasons `assets status` gives). `materialize --dry-run` prints it.
//!
//! An asset runs when it is forced, missing or stale, or when an upstream in the same plan runs (its new
//! materialization makes this one stale). A fresh asset whose stale upstream is *not* selected is
//! skipped, exactly as `materialize` skips it.

use crate::error::{DefinitionError, EngineError};
use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::partitions::PartitionSelection;
use crate::project::Project;
use crate::selection::select;
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
        .hint("`assets list --json` shows keys, groups, tags and kinds to select from"));
    }
    Ok(selected)
}

/// The steps of a run over `selected`, in dependency order: the whole-asset step of each unpartitioned
/// asset, and one step per covered partition (`partitions`, at `now`) of each partitioned one; the
/// sources a selected asset reads are observed first, selected or not (a run reads what the source
/// is now, and a source that did not change records nothing). E0411
/// when a partition does not exist for an asset, E0412 when partitions are named but no selected asset
/// is partitioned.
pub(crate) fn steps_in_order(
    project: &Project,
    selected: &BTreeSet<AssetKey>,
    partitions: &PartitionSelection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<StepKey>, EngineError> {
    let order = project
        .graph
        .topological_order()
        .ok_or_else(|| EngineError::Internal("validated graph has a cycle".into()))?;
    let mut steps = Vec::new();
    let mut partitioned = false;
    let read_sources = selected
        .iter()
        .flat_map(|k| &project.assets[k].deps)
        .filter(|d| {
            project
                .assets
                .get(*d)
                .is_some_and(|s| s.kind == "source" && s.partitions.is_none())
        });
    let selected: BTreeSet<&AssetKey> = selected.iter().chain(read_sources).collect();
    for key in order.into_iter().filter(|k| selected.contains(*k)) {
        let spec = &project.assets[key];
        if spec.partitions.is_none() {
            steps.push(StepKey::whole(key.clone()));
            continue;
        }
        partitioned = true;
        let keys = partitions
            .resolve(&spec.key, spec.partitions.as_ref(), now)
            .map_err(|m| {
                DefinitionError::new("E0411", m).hint("`assets partitions ASSET` lists them")
            })?;
        steps.extend(keys.into_iter().map(|p| StepKey {
            asset: key.clone(),
            partition: Some(p),
        }));
    }
    if let PartitionSelection::Range(..) = partitions {
        steps = whole_windows(project, steps);
    }
    if !partitioned && *partitions != PartitionSelection::All {
        return Err(DefinitionError::new(
            "E0412",
            "--partition was given, but no selected asset is partitioned",
        )
        .hint(
            "select a partitioned asset (`assets partitions KEY` lists an asset's partitions), or leave out --partition",
        )
        .into());
    }
    Ok(steps)
}

/// In a range over assets of different time windows (days and their weekly rollup), a window is
/// planned only with the upstream windows it reads: a week at the range's edge whose days are partly
/// outside it is left out, as is anything built on it. Only the default mapping between time
/// windows counts (an explicit `last`/`offset` reads outside the range on purpose), and only
/// upstreams in the plan (an unselected upstream is read as it is).
fn whole_windows(project: &Project, steps: Vec<StepKey>) -> Vec<StepKey> {
    use crate::partitions::{PartitionsKind, Upstream};
    use crate::upstream::upstreams;
    let in_plan: BTreeSet<AssetKey> = steps.iter().map(|s| s.asset.clone()).collect();
    let mut kept: HashSet<StepKey> = HashSet::new();
    let mut out = Vec::new();
    for step in steps {
        let spec = &project.assets[&step.asset];
        let whole = step.partition.is_none()
            || upstreams(project, spec, &step).iter().all(|u| match u {
                Upstream::Window(dep, parts)
                    if in_plan.contains(dep)
                        && !spec.partition_mappings.contains_key(dep)
                        && project.assets[dep]
                            .partitions
                            .as_ref()
                            .is_some_and(|d| matches!(d.kind, PartitionsKind::Time(_))) =>
                {
                    parts.iter().all(|p| {
                        kept.contains(&StepKey {
                            asset: dep.clone(),
                            partition: Some(p.clone()),
                        })
                    })
                }
                _ => true,
            });
        if whole {
            kept.insert(step.clone());
            out.push(step);
        }
    }
    out
}

impl PlannedStep {
    /// The step key (asset and partition).
    pub fn step(&self) -> StepKey {
        StepKey {
            asset: self.key.clone(),
            partition: self.partition.clone(),
        }
    }
}
