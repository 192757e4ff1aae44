//! Staleness: an asset is missing (never materialized), fresh, or stale because its code version changed
//! or an upstream has a newer materialization than the one it read.

use crate::key::StepKey;
use crate::project::AssetSpec;
use crate::store::Materialization;
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
/// materialization of every step key.
pub fn freshness(
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
    for up in crate::plan::upstream_steps(spec, step) {
        let read =
            m.m.upstream
                .iter()
                .find(|u| u.key == up.asset && u.partition == up.partition);
        match (latest.get(&up), read) {
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

/// The first [`SHORT_ID_LEN`](crate::store::SHORT_ID_LEN) characters of a run id (its creation
/// millisecond), for messages.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(crate::store::SHORT_ID_LEN)]
}
