//! Which partitions a run covers, and which upstream partitions a step reads (partition mappings).

use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::project::{AssetSpec, Project};
use chrono::{DateTime, Utc};

/// Which partitions of the selected partitioned assets a run covers (`materialize --partition`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PartitionSelection {
    /// Every partition that exists now.
    #[default]
    All,
    /// These keys.
    Keys(Vec<PartitionKey>),
    /// From the first to the second, both included.
    Range(PartitionKey, PartitionKey),
    /// Each asset's latest partition that exists (a schedule's `partition: latest`).
    Latest,
}

impl PartitionSelection {
    /// Parses `--partition` values: keys, or one `FROM..TO` range. The error is a sentence for E0411.
    pub fn parse(values: &[String]) -> Result<Self, String> {
        if values.is_empty() {
            return Ok(PartitionSelection::All);
        }
        let ranges: Vec<&String> = values.iter().filter(|v| v.contains("..")).collect();
        match (ranges.as_slice(), values.len()) {
            ([], _) => {
                let mut keys = Vec::new();
                for v in values.iter().flat_map(|v| v.split(',')) {
                    super::validate_key(v.trim())?;
                    keys.push(PartitionKey(v.trim().to_string()));
                }
                Ok(PartitionSelection::Keys(keys))
            }
            ([r], 1) => {
                let (a, b) = r.split_once("..").unwrap_or_default();
                super::validate_key(a.trim())?;
                super::validate_key(b.trim())?;
                Ok(PartitionSelection::Range(
                    PartitionKey(a.trim().into()),
                    PartitionKey(b.trim().into()),
                ))
            }
            _ => Err("give either partition keys or one FROM..TO range, not both".into()),
        }
    }

    /// The partitions of `spec` this selection covers at `now`; the error names the asset.
    pub fn resolve(
        &self,
        spec: &AssetSpec,
        now: DateTime<Utc>,
    ) -> Result<Vec<PartitionKey>, String> {
        let Some(def) = &spec.partitions else {
            return Ok(Vec::new());
        };
        let bad = |e: String| format!("asset '{}': {e}", spec.key);
        match self {
            PartitionSelection::All => Ok(def.keys(now)),
            PartitionSelection::Keys(keys) => {
                for k in keys {
                    def.check(k, now).map_err(bad)?;
                }
                Ok(keys.clone())
            }
            PartitionSelection::Range(a, b) => def.range(a, b, now).map_err(bad),
            PartitionSelection::Latest => match def.keys(now).pop() {
                Some(k) => Ok(vec![k]),
                None => Err(bad(format!("no partition exists yet at {now}"))),
            },
        }
    }
}

/// What a step reads of one upstream asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// One step key: the whole upstream, or the one partition mapped to the step's.
    Step(StepKey),
    /// Several partitions of a time-partitioned upstream: those whose windows overlap the step's
    /// window (the days of a week).
    Window(AssetKey, Vec<PartitionKey>),
    /// Every materialized partition of a partitioned upstream (the whole table).
    All(AssetKey),
}

impl Upstream {
    /// The upstream asset.
    pub fn asset(&self) -> &AssetKey {
        match self {
            Upstream::Step(s) => &s.asset,
            Upstream::Window(a, _) | Upstream::All(a) => a,
        }
    }

    /// The step keys read, unless it is all partitions.
    pub fn steps(&self) -> Option<Vec<StepKey>> {
        match self {
            Upstream::Step(s) => Some(vec![s.clone()]),
            Upstream::Window(a, parts) => Some(
                parts
                    .iter()
                    .map(|p| StepKey {
                        asset: a.clone(),
                        partition: Some(p.clone()),
                    })
                    .collect(),
            ),
            Upstream::All(_) => None,
        }
    }
}

/// What step `step` of `spec` reads of each upstream. The mappings: an unpartitioned upstream is read
/// whole; a partitioned upstream with the same partitions as the step's asset is read at the step's
/// partition (identity); a time-partitioned upstream of a time-partitioned asset with other windows is
/// read at the partitions whose windows overlap the step's (the days of a week); any other partitioned
/// upstream is read whole, all its partitions (an unpartitioned rollup of a daily asset).
pub fn upstreams(project: &Project, spec: &AssetSpec, step: &StepKey) -> Vec<Upstream> {
    spec.deps
        .iter()
        .map(|d| {
            let up = project.assets.get(d).and_then(|u| u.partitions.as_ref());
            match (up, &spec.partitions, &step.partition) {
                (None, _, _) => Upstream::Step(StepKey::whole(d.clone())),
                (Some(u), Some(s), Some(p)) if u.kind == s.kind => Upstream::Step(StepKey {
                    asset: d.clone(),
                    partition: Some(p.clone()),
                }),
                (Some(u), Some(s), Some(p)) => match s.window(p) {
                    Some(w) if matches!(u.kind, super::PartitionsKind::Time(_)) => {
                        Upstream::Window(d.clone(), u.overlapping(&w))
                    }
                    _ => Upstream::All(d.clone()),
                },
                (Some(_), _, _) => Upstream::All(d.clone()),
            }
        })
        .collect()
}
