//! What a step reads of each upstream: partition mappings applied over the project's definitions
//! (identity, time-window overlap, across dimensions, explicit `partition_mapping:`). Above
//! `partitions` (which holds only definitions) and `project`, on the model floor.

use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::partitions::Upstream;
use crate::project::{AssetSpec, Project};

/// What step `step` of `spec` reads of each upstream. An explicit `partition_mapping:` for the upstream
/// decides first. Otherwise: an unpartitioned upstream is read
/// whole; a partitioned upstream with the same partitions as the step's asset is read at the step's
/// partition (identity); a time-partitioned upstream of a time-partitioned asset with other windows is
/// read at the partitions whose windows overlap the step's (the days of a week); between a
/// multi-dimensional asset and one with the partitions of exactly one of its dimensions, that dimension
/// maps (see [`across_dimensions`]); any other partitioned upstream is read whole, all its partitions
/// (an unpartitioned rollup of a daily asset).
pub fn upstreams(project: &Project, spec: &AssetSpec, step: &StepKey) -> Vec<Upstream> {
    spec.deps
        .iter()
        .map(|d| {
            let up = project.assets.get(d).and_then(|u| u.partitions.as_ref());
            if let (Some(u), Some(s), Some(p)) = (up, &spec.partitions, &step.partition) {
                if !spec.partition_mappings.contains_key(d) {
                    if let Some(across) = across_dimensions(d, s, u, p) {
                        return across;
                    }
                }
            }
            match (up, &spec.partitions, &step.partition) {
                (None, _, _) => Upstream::Step(StepKey::whole(d.clone())),
                (Some(u), Some(s), Some(p)) if spec.partition_mappings.contains_key(d) => {
                    Upstream::Window(d.clone(), spec.partition_mappings[d].apply(s, u, p))
                }
                (Some(u), Some(s), Some(p)) if u.kind == s.kind => Upstream::Step(StepKey {
                    asset: d.clone(),
                    partition: Some(p.clone()),
                }),
                (Some(u), Some(s), Some(p)) => match s.window(p) {
                    Some(w) if matches!(u.kind, crate::partitions::PartitionsKind::Time(_)) => {
                        Upstream::Window(d.clone(), u.overlapping(&w))
                    }
                    _ => Upstream::All(d.clone()),
                },
                (Some(_), _, _) => Upstream::All(d.clone()),
            }
        })
        .collect()
}

/// Between a multi-dimensional and a one-dimensional definition that is exactly one of its dimensions
/// (as Dagster's `MultiToSingleDimensionPartitionMapping`): a `date|region` step reads its date's
/// partition of a daily upstream; a daily step reads every region of its date of a `date|region`
/// upstream (when the other dimensions are not time windows). `None` when neither applies.
fn across_dimensions(
    dep: &AssetKey,
    this: &crate::partitions::PartitionsDef,
    up: &crate::partitions::PartitionsDef,
    partition: &PartitionKey,
) -> Option<Upstream> {
    use crate::partitions::multi::{matching, split, with_part};
    use crate::partitions::PartitionsKind as K;
    match (&this.kind, &up.kind) {
        (K::Multi(dims), other) if !matches!(other, K::Multi(_)) => {
            let i = matching(dims, other)?;
            let part = split(dims, partition).ok()?[i].to_string();
            Some(Upstream::Step(StepKey {
                asset: dep.clone(),
                partition: Some(PartitionKey(part)),
            }))
        }
        (other, K::Multi(dims)) if !matches!(other, K::Multi(_)) => {
            let i = matching(dims, other)?;
            Some(Upstream::Window(
                dep.clone(),
                with_part(dims, i, partition)?,
            ))
        }
        _ => None,
    }
}
