//! Staleness: an asset is missing (never materialized), fresh, or stale because its code version changed
//! or an upstream has a newer materialization than the one it read.

use crate::key::{AssetKey, StepKey};
use crate::partitions::Upstream;
use crate::project::{AssetSpec, Project};
use crate::store::Materialization;
use crate::upstream::upstreams;
use serde::Serialize;
use std::collections::HashMap;

/// Whether an asset needs recomputing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reasons", rename_all = "snake_case")]
pub enum Freshness {
    /// Never materialized.
    Missing,
    /// Up to date with its code and upstreams.
    Fresh,
    /// Needs recomputing, with the reasons.
    Stale(Vec<String>),
}

impl Freshness {
    /// `missing`, `fresh` or `stale`.
    pub fn label(&self) -> &'static str {
        match self {
            Freshness::Missing => "missing",
            Freshness::Fresh => "fresh",
            Freshness::Stale(_) => "stale",
        }
    }
}

/// Freshness of step `step` of `spec` (the whole asset, or one partition) given the latest
/// materialization of every step key. Which upstream step keys it is compared with is the partition
/// mapping's ([`upstreams`]).
pub fn freshness(
    project: &Project,
    spec: &AssetSpec,
    step: &StepKey,
    latest: &HashMap<StepKey, Materialization>,
) -> Freshness {
    let Some(m) = latest.get(step) else {
        return Freshness::Missing;
    };
    let mut reasons = Vec::new();
    if m.m.code_version != spec.code_version {
        reasons.push(format!(
            "code version changed ({} → {})",
            m.m.code_version, spec.code_version
        ));
    }
    for up in upstreams(project, spec, step) {
        match up {
            Upstream::Step(up) => compare(&mut reasons, m, &up, latest.get(&up)),
            Upstream::Window(..) => {
                for up in up.steps().unwrap_or_default() {
                    compare(&mut reasons, m, &up, latest.get(&up));
                }
            }
            Upstream::All(asset) => all_partitions(&mut reasons, m, &asset, latest),
        }
    }
    for u in &m.m.upstream {
        if !spec.deps.contains(&u.key) {
            reasons.push(format!(
                "upstream '{}' was removed since the last materialization",
                u.key
            ));
        }
    }
    if reasons.is_empty() {
        Freshness::Fresh
    } else {
        Freshness::Stale(reasons)
    }
}

/// Whether materialization `m` read `up`'s latest materialization.
fn compare(
    reasons: &mut Vec<String>,
    m: &Materialization,
    up: &StepKey,
    newest: Option<&Materialization>,
) {
    let read =
        m.m.upstream
            .iter()
            .find(|u| u.key == up.asset && u.partition == up.partition);
    match (newest, read) {
        (None, _) => reasons.push(format!("upstream '{up}' has no materialization")),
        (Some(u), Some(r)) if r.materialization_id == Some(u.id) => {}
        (Some(u), Some(r)) => reasons.push(format!(
            "upstream '{up}' has a newer materialization (#{} in run {}; this read #{})",
            u.id,
            short(u.m.run_id.as_str()),
            r.materialization_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "?".into())
        )),
        (Some(_), None) => reasons.push(format!(
            "upstream '{up}' was added since the last materialization"
        )),
    }
}

/// Whether materialization `m` read the latest materialization of every partition of `asset`.
fn all_partitions(
    reasons: &mut Vec<String>,
    m: &Materialization,
    asset: &AssetKey,
    latest: &HashMap<StepKey, Materialization>,
) {
    let (mut seen, mut newer, mut added) = (0usize, Vec::new(), Vec::new());
    for (k, u) in latest.iter().filter(|(k, _)| &k.asset == asset) {
        seen += 1;
        let read =
            m.m.upstream
                .iter()
                .find(|r| &r.key == asset && r.partition == k.partition);
        match read {
            Some(r) if r.materialization_id == Some(u.id) => {}
            Some(_) => newer.push(k.to_string()),
            None => added.push(k.to_string()),
        }
    }
    if seen == 0 {
        reasons.push(format!("upstream '{asset}' has no materialization"));
    }
    for (list, what) in [
        (&mut newer, "has a newer materialization"),
        (&mut added, "was added since the last materialization"),
    ] {
        list.sort();
        match list.len() {
            0 => {}
            1 => reasons.push(format!("upstream '{}' {what}", list[0])),
            n => reasons.push(format!(
                "{n} partitions of upstream '{asset}' (first '{}') {}",
                list[0],
                what.replace("has a", "have a")
                    .replace("was added", "were added")
            )),
        }
    }
}

/// The first [`SHORT_ID_LEN`](crate::store::SHORT_ID_LEN) characters of a run id (its creation
/// millisecond), for messages.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(crate::store::SHORT_ID_LEN)]
}
