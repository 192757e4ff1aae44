//! Trailing reads resolved into partition mappings: an asset whose kind reads an upstream over a span
//! before each partition's end ([`AssetSpec::lookbacks`]) reads it through the `{last: N}` covering
//! that span when both have time partitions. A declared `partition_mapping:` for that upstream must
//! be at least as wide.

use super::AssetSpec;
use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::partitions::PartitionMapping;
use std::collections::BTreeMap;

/// Adds the derived mappings; the errors are declared mappings too narrow for the span (E0212).
pub(super) fn resolve(assets: &mut BTreeMap<AssetKey, AssetSpec>) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut derived = Vec::new();
    for spec in assets.values() {
        let Some(this) = &spec.partitions else {
            continue;
        };
        for (up, span) in &spec.lookbacks {
            let Some(theirs) = assets.get(up).and_then(|u| u.partitions.as_ref()) else {
                continue;
            };
            let Some(PartitionMapping::Last(n)) = PartitionMapping::covering(this, theirs, *span)
            else {
                continue;
            };
            match spec.partition_mappings.get(up) {
                None => derived.push((spec.key.clone(), up.clone(), PartitionMapping::Last(n))),
                Some(PartitionMapping::Last(m)) if *m >= n => {}
                Some(declared) => errors.push(
                    DefinitionError::new(
                        "E0212",
                        format!(
                            "partition_mapping of '{up}': {declared:?} does not cover the {} this asset reads before each partition's end",
                            crate::duration::format_duration(*span)
                        ),
                    )
                    .asset(spec.key.as_str())
                    .at_opt(spec.source.clone())
                    .hint(format!("drop it (Spine derives `{{last: {n}}}`), or write `{{last: N}}` with N ≥ {n}")),
                ),
            }
        }
    }
    for (key, up, mapping) in derived {
        if let Some(s) = assets.get_mut(&key) {
            s.partition_mappings.insert(up, mapping);
        }
    }
    errors
}
