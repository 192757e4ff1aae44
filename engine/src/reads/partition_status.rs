//! `assets partitions ASSET`: the state of each partition of a partitioned asset, read from the run
//! store and compressed into ranges of consecutive partitions in the same state.

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError};
use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::partitions::{compress, PartitionRange, PartitionsDef};
use crate::project::AssetSpec;
use crate::staleness::{freshness, Freshness};
use crate::store::Materialization;
use std::collections::HashMap;

/// Whether the latest step of `asset[p]` failed (or was skipped because its upstream failed).
pub(crate) fn failed(
    outcomes: &HashMap<StepKey, crate::store::LatestOutcome>,
    asset: &AssetKey,
    p: &PartitionKey,
) -> bool {
    let step = StepKey {
        asset: asset.clone(),
        partition: Some(p.clone()),
    };
    // A skipped step (its upstream failed) did not fail: the partition is missing or stale.
    outcomes
        .get(&step)
        .is_some_and(|o| o.status == crate::store::StepStatus::Failed)
}

impl Engine {
    /// The state of every partition of `key` that exists now, as ranges. E0402 for an unknown asset,
    /// E0413 for an unpartitioned one.
    pub async fn partition_ranges(&self, key: &str) -> Result<Vec<PartitionRange>, EngineError> {
        crate::selection::select(&self.project, Some(key))?;
        let key = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
        let spec = &self.project.assets[&key];
        let Some(def) = &spec.partitions else {
            return Err(
                DefinitionError::new("E0413", format!("asset '{key}' is not partitioned"))
                    .hint("`assets status` shows it; `partitions:` in its YAML partitions it")
                    .into(),
            );
        };
        let latest = self.store.latest_materializations().await?;
        let outcomes = self.store.latest_step_outcomes(Some(&key)).await?;
        let states = self
            .each_partition(spec, def, &latest)
            .map(|(p, f)| match f {
                Freshness::Fresh => (p, "fresh", None),
                _ if failed(&outcomes, &key, &p) => (p, "failed", None),
                Freshness::Missing => (p, "missing", None),
                Freshness::Stale(r) => (p, "stale", r.into_iter().next()),
            });
        Ok(compress(states))
    }

    /// One row per partition of every partitioned asset that exists now: its state (`fresh`, `stale`,
    /// `missing`, `failed`) and latest materialization (`spine.partitions` in `assets sql`).
    pub(crate) async fn partition_rows(
        &self,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, EngineError> {
        let latest = self.store.latest_materializations().await?;
        let outcomes = self.store.latest_step_outcomes(None).await?;
        let mut out = Vec::new();
        for spec in self.project.assets.values() {
            let Some(def) = &spec.partitions else {
                continue;
            };
            for (p, f) in self.each_partition(spec, def, &latest) {
                let state = match f {
                    Freshness::Fresh => "fresh",
                    _ if failed(&outcomes, &spec.key, &p) => "failed",
                    Freshness::Missing => "missing",
                    Freshness::Stale(_) => "stale",
                };
                let step = StepKey {
                    asset: spec.key.clone(),
                    partition: Some(p.clone()),
                };
                let m = latest.get(&step);
                let row = serde_json::json!({
                    "asset_key": spec.key.as_str(),
                    "partition_key": p.as_str(),
                    "state": state,
                    "materialization_id": m.map(|m| m.id),
                    "delta_version": m.map(|m| m.m.delta_version),
                    "row_count": m.map(|m| m.m.row_count),
                    "data_version": m.map(|m| m.m.data_version.clone()),
                    "run_id": m.map(|m| m.m.run_id.to_string()),
                    "materialized_at": m.map(|m| m.created_at.clone()),
                });
                if let serde_json::Value::Object(o) = row {
                    out.push(o);
                }
            }
        }
        Ok(out)
    }

    /// Each partition of `spec` that exists now, in the definition's order, with its freshness.
    pub(crate) fn each_partition<'a>(
        &'a self,
        spec: &'a AssetSpec,
        def: &PartitionsDef,
        latest: &'a HashMap<StepKey, Materialization>,
    ) -> impl Iterator<Item = (PartitionKey, Freshness)> + 'a {
        def.keys(self.clock.now()).into_iter().map(move |p| {
            let step = StepKey {
                asset: spec.key.clone(),
                partition: Some(p.clone()),
            };
            let f = freshness(&self.project, spec, &step, latest);
            (p, f)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_partitions_in_one_state_are_one_range() {
        let k = |s: &str| PartitionKey(s.into());
        let states = [
            (k("d1"), "fresh", None),
            (k("d2"), "fresh", None),
            (k("d3"), "stale", Some("code changed".to_string())),
            (k("d4"), "stale", Some("code changed".to_string())),
            (k("d5"), "stale", Some("upstream newer".to_string())),
            (k("d6"), "missing", None),
        ];
        let r = compress(states);
        let short: Vec<(&str, &str, usize, &str)> = r
            .iter()
            .map(|r| (r.first.as_str(), r.last.as_str(), r.count, r.state))
            .collect();
        assert_eq!(
            short,
            [
                ("d1", "d2", 2, "fresh"),
                ("d3", "d4", 2, "stale"),
                ("d5", "d5", 1, "stale"),
                ("d6", "d6", 1, "missing")
            ]
        );
        assert!(compress(Vec::new()).is_empty());
    }
}
