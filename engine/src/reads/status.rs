//! `assets status` (and the UI's catalog, `status:` selectors, `assets show`): each asset's state —
//! missing, fresh, stale with reasons, or upstream-stale — its partition counts and the versions its
//! checks hold back, read from the run store.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::key::AssetKey;
use crate::selection::select;
use crate::staleness::{freshness, Freshness};
use crate::store::Materialization;
use std::collections::HashMap;

/// One row of `assets status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssetStatus {
    /// Asset.
    pub key: AssetKey,
    /// Missing / fresh / stale with reasons.
    pub freshness: Freshness,
    /// `missing`, `stale`, `fresh`, or `upstream_stale` (fresh against its upstreams' latest data, but an
    /// ancestor is stale or missing, so refreshing that ancestor will recompute this one too).
    pub state: &'static str,
    /// Whether an ancestor is stale or missing (so a full refresh would recompute this one too).
    pub upstream_outdated: bool,
    /// The nearest stale or missing ancestor that makes this one `upstream_stale`.
    pub outdated_upstream: Option<AssetKey>,
    /// Latest materialization (of the whole asset; the latest of any partition for a partitioned one).
    pub latest: Option<Materialization>,
    /// For a partitioned asset: how many of its partitions are in each state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<PartitionCounts>,
    /// Newer versions a failed `error` check keeps unpublished (write-audit-publish).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

/// A version a failed check keeps unpublished.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    /// Its partition, for a partitioned asset.
    pub partition: Option<crate::key::PartitionKey>,
    /// Its Delta version.
    pub delta_version: i64,
    /// The `error` checks that failed on it.
    pub failed_checks: Vec<String>,
}

/// How many partitions of a partitioned asset are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionCounts {
    /// Partitions that exist now.
    pub total: usize,
    /// Up to date.
    pub fresh: usize,
    /// Materialized but stale.
    pub stale: usize,
    /// Never materialized.
    pub missing: usize,
    /// Not fresh, and its latest step failed; counted here instead of as stale or missing (a step
    /// skipped because its upstream failed leaves its partition stale or missing).
    pub failed: usize,
    /// Rows of the table: the row counts of the partitions' latest published materializations.
    pub rows: i64,
}

impl Engine {
    /// Status of the selected assets, in dependency order.
    pub async fn status(&self, selection: Option<&str>) -> Result<Vec<AssetStatus>, EngineError> {
        let selected = select(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let outcomes = if selected
            .iter()
            .any(|k| self.project.assets[k].partitions.is_some())
        {
            self.store.latest_step_outcomes(None).await?
        } else {
            HashMap::new()
        };
        let mut held: HashMap<AssetKey, Vec<HeldBack>> = HashMap::new();
        for m in self.store.held_back().await? {
            if !selected.contains(&m.m.asset_key) {
                continue;
            }
            let failed_checks = self
                .store
                .check_results(m.id)
                .await?
                .into_iter()
                .filter(|c| c.outcome.blocks())
                .map(|c| c.outcome.name)
                .collect();
            held.entry(m.m.asset_key.clone())
                .or_default()
                .push(HeldBack {
                    partition: m.m.partition_key.clone(),
                    delta_version: m.m.delta_version,
                    failed_checks,
                });
        }
        let order = self.project.graph.topological_order().unwrap_or_default();
        // For each asset: the stale or missing asset (itself or an ancestor) that makes it outdated.
        let mut outdated_by: HashMap<&AssetKey, &AssetKey> = HashMap::new();
        let mut out = Vec::new();
        for key in order {
            let spec = &self.project.assets[key];
            let step = crate::key::StepKey::whole(key.clone());
            let (mut f, partitions) = match &spec.partitions {
                None => (freshness(&self.project, spec, &step, &latest), None),
                Some(def) => self.partition_freshness(spec, def, &latest, &outcomes),
            };
            // A source read in place whose recorded files went away is not fresh: its readers
            // would fail on them.
            if let (Freshness::Fresh, Some(m), Some(config)) =
                (&f, latest.get(&step), self.in_place(spec))
            {
                if let Some(path) = config.vanished(&m.m.metadata) {
                    f = Freshness::Stale(vec![format!(
                        "its file {path} is gone since it was observed; `assets observe {key}` \
                         records what is there now"
                    )]);
                }
            }
            let up = spec.deps.iter().find_map(|d| outdated_by.get(d).copied());
            if f != Freshness::Fresh {
                outdated_by.insert(key, key);
            } else if let Some(u) = up {
                outdated_by.insert(key, u);
            }
            if selected.contains(key) {
                let state = match (&f, up) {
                    (Freshness::Fresh, Some(_)) => "upstream_stale",
                    _ => f.label(),
                };
                out.push(AssetStatus {
                    key: key.clone(),
                    state,
                    freshness: f,
                    upstream_outdated: up.is_some(),
                    outdated_upstream: up.cloned(),
                    latest: match &spec.partitions {
                        None => latest.get(&step).cloned(),
                        Some(_) => latest
                            .values()
                            .filter(|m| &m.m.asset_key == key)
                            .max_by_key(|m| m.id)
                            .cloned(),
                    },
                    partitions,
                    held_back: held.remove(key).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// A partitioned asset's freshness over its partitions that exist now: missing when none was
    /// materialized, fresh when all are fresh, else stale with counts (and the first stale reason).
    fn partition_freshness(
        &self,
        spec: &crate::project::AssetSpec,
        def: &crate::partitions::PartitionsDef,
        latest: &HashMap<crate::key::StepKey, Materialization>,
        outcomes: &HashMap<crate::key::StepKey, crate::store::LatestOutcome>,
    ) -> (Freshness, Option<PartitionCounts>) {
        let mut counts = PartitionCounts::default();
        let mut first_reason: Option<String> = None;
        for (p, f) in self.each_partition(spec, def, latest) {
            counts.total += 1;
            let step = crate::key::StepKey {
                asset: spec.key.clone(),
                partition: Some(p.clone()),
            };
            counts.rows += latest.get(&step).map_or(0, |m| m.m.row_count);
            match f {
                Freshness::Fresh => counts.fresh += 1,
                _ if crate::reads::failed(outcomes, &spec.key, &p) => counts.failed += 1,
                Freshness::Missing => counts.missing += 1,
                Freshness::Stale(r) => {
                    counts.stale += 1;
                    if first_reason.is_none() {
                        first_reason = r.first().map(|r| format!("[{p}] {r}"));
                    }
                }
            }
        }
        let f = if counts.fresh == counts.total {
            Freshness::Fresh
        } else if counts.missing == counts.total {
            Freshness::Missing
        } else {
            let parts: Vec<String> = [
                (counts.stale, "stale"),
                (counts.missing, "never materialized"),
                (counts.failed, "failed"),
            ]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
            let mut reasons = vec![format!(
                "of {} partitions: {}",
                counts.total,
                parts.join(", ")
            )];
            reasons.extend(first_reason);
            Freshness::Stale(reasons)
        };
        (f, Some(counts))
    }
}
