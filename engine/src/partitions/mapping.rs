//! Which partitions a run covers, and which upstream partitions a step reads (partition mappings).

use crate::key::{AssetKey, PartitionKey, StepKey};
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

    /// The partitions this selection covers at `now` of asset `key` partitioned by `def` (none for
    /// an unpartitioned one); the error names the asset.
    pub fn resolve(
        &self,
        key: &AssetKey,
        def: Option<&super::PartitionsDef>,
        now: DateTime<Utc>,
    ) -> Result<Vec<PartitionKey>, String> {
        let Some(def) = def else {
            return Ok(Vec::new());
        };
        let bad = |e: String| format!("asset '{key}': {e}");
        match self {
            PartitionSelection::All => Ok(def.keys(now)),
            PartitionSelection::Keys(keys) => {
                if let Some(all) = def.covering(keys, now) {
                    return Ok(all);
                }
                for k in keys {
                    def.check(k, now).map_err(bad)?;
                }
                Ok(keys.clone())
            }
            PartitionSelection::Range(a, b) => match def.covering_range(a, b, now) {
                Some(all) => Ok(all),
                // A range of another asset's keys (days, for a weekly asset): the windows that
                // overlap it, as Dagster applies a time range per asset.
                None => def
                    .range(a, b, now)
                    .or_else(|e| match def.overlapping_range(a, b, now) {
                        Some(keys) if !keys.is_empty() => Ok(keys),
                        Some(_) => Err(bad(format!(
                            "no partition of it overlaps {a}..{b} and has ended"
                        ))),
                        None => Err(bad(e)),
                    }),
            },
            PartitionSelection::Latest => match def.keys(now).pop() {
                Some(k) => Ok(vec![k]),
                None => Err(bad(format!("no partition exists yet at {now}"))),
            },
        }
    }
}

/// An explicit mapping from a step's partition to an upstream's partitions (`partition_mapping:` in the
/// asset's YAML, per upstream), instead of the default ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionMapping {
    /// The upstream windows that overlap the step's, shifted by this many windows (`-1`: the
    /// previous day of a daily upstream).
    Offset(i64),
    /// The last `n` upstream windows, ending with the latest one that overlaps the step's (a 7-day
    /// rolling window).
    Last(u32),
    /// Static partitions: each of this asset's partitions reads these upstream partitions.
    Map(std::collections::BTreeMap<PartitionKey, Vec<PartitionKey>>),
}

impl PartitionMapping {
    /// Parses a mapping: `{offset: -1}`, `{last: 7}` or `{map: {emea: [de, fr], amer: [us]}}`. The error
    /// is a sentence for E0212.
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        let hint = "write `{offset: -1}`, `{last: 7}` or `{map: {THIS_PARTITION: [UPSTREAM_PARTITION, …]}}`";
        let Some((k, v)) = v
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(format!("not a partition mapping: {hint}"));
        };
        match k.as_str() {
            "offset" => v
                .as_i64()
                .map(PartitionMapping::Offset)
                .ok_or_else(|| "`offset` takes a whole number of windows, e.g. -1".into()),
            "last" => v
                .as_u64()
                .filter(|n| (1..=10_000).contains(n))
                .map(|n| PartitionMapping::Last(n as u32))
                .ok_or_else(|| "`last` takes a number of windows from 1 to 10000".into()),
            "map" => {
                let o = v
                    .as_object()
                    .ok_or("`map` takes {this partition: [upstream partitions]}")?;
                let mut out = std::collections::BTreeMap::new();
                for (from, to) in o {
                    let to: Vec<PartitionKey> = match to {
                        serde_json::Value::String(s) => vec![PartitionKey(s.clone())],
                        serde_json::Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().map(|s| PartitionKey(s.to_string())))
                            .collect::<Option<_>>()
                            .ok_or("`map` values are partition keys or lists of them")?,
                        _ => return Err("`map` values are partition keys or lists of them".into()),
                    };
                    out.insert(PartitionKey(from.clone()), to);
                }
                Ok(PartitionMapping::Map(out))
            }
            other => Err(format!("unknown partition mapping '{other}': {hint}")),
        }
    }

    /// The `{last: N}` by which each window of `this` reads the upstream windows that cover the `span`
    /// before its end (a feature view's longest window); `None` unless both are time windows. `N` is
    /// exact when the upstream's window boundaries fall on this asset's (same timezone and cadence, or
    /// a finer upstream), one more otherwise; days of 23 hours (DST) are counted as such.
    pub fn covering(
        this: &super::PartitionsDef,
        up: &super::PartitionsDef,
        span: std::time::Duration,
    ) -> Option<PartitionMapping> {
        use super::time::Cadence as C;
        use chrono::{Datelike, Timelike};
        let (super::PartitionsKind::Time(t), super::PartitionsKind::Time(u)) =
            (&this.kind, &up.kind)
        else {
            return None;
        };
        let hour = 3600u64;
        let dst = if u.tz == chrono_tz::Tz::UTC { 0 } else { hour };
        let shortest = match u.cadence {
            C::Hourly => hour,
            C::Daily => 24 * hour - dst,
            C::Weekly => 7 * 24 * hour - dst,
            C::Monthly => 28 * 24 * hour - dst,
        };
        let same_time = t.start.time() == u.start.time();
        let aligned = t.tz == u.tz
            && match u.cadence {
                C::Hourly => {
                    t.start.minute() == u.start.minute() && t.start.second() == u.start.second()
                }
                C::Daily => t.cadence != C::Hourly && same_time,
                C::Weekly => {
                    t.cadence == C::Weekly && same_time && t.start.weekday() == u.start.weekday()
                }
                C::Monthly => {
                    t.cadence == C::Monthly && same_time && t.start.day() == u.start.day()
                }
            };
        let n = span.as_secs().div_ceil(shortest) + u64::from(!aligned);
        Some(PartitionMapping::Last(n.clamp(1, 10_000) as u32))
    }

    /// Checks the mapping against the two definitions; the error is a sentence for E0212.
    pub fn check(
        &self,
        this: &super::PartitionsDef,
        up: &super::PartitionsDef,
    ) -> Result<(), String> {
        use super::PartitionsKind as K;
        match (self, &this.kind, &up.kind) {
            (PartitionMapping::Offset(_) | PartitionMapping::Last(_), K::Time(_), K::Time(_)) => Ok(()),
            (PartitionMapping::Offset(_) | PartitionMapping::Last(_), _, _) => {
                Err("`offset` and `last` map time windows: both assets need hourly/daily/weekly/monthly partitions".into())
            }
            (PartitionMapping::Map(m), K::Static(mine), K::Static(theirs)) => {
                if let Some(k) = m.keys().find(|k| !mine.contains(k)) {
                    return Err(format!("`map` names '{k}', which is not one of this asset's partitions"));
                }
                if let Some(k) = m.values().flatten().find(|k| !theirs.contains(k)) {
                    return Err(format!("`map` names '{k}', which is not one of the upstream's partitions"));
                }
                Ok(())
            }
            (PartitionMapping::Map(_), _, _) => {
                Err("`map` maps static partitions: both assets need `static:` partitions".into())
            }
        }
    }

    /// The upstream partitions `partition` (of `this`) reads.
    pub(crate) fn apply(
        &self,
        this: &super::PartitionsDef,
        up: &super::PartitionsDef,
        partition: &PartitionKey,
    ) -> Vec<PartitionKey> {
        let super::PartitionsKind::Time(t) = &up.kind else {
            return match self {
                PartitionMapping::Map(m) => m.get(partition).cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
        };
        let over = match this.window(partition) {
            Some(w) => up.overlapping(&w),
            None => Vec::new(),
        };
        match self {
            PartitionMapping::Offset(k) => over.iter().flat_map(|p| t.shifted(p, *k, *k)).collect(),
            PartitionMapping::Last(n) => match over.last() {
                Some(b) => t.shifted(b, -(*n as i64 - 1), 0),
                None => Vec::new(),
            },
            PartitionMapping::Map(_) => Vec::new(),
        }
    }
}

/// What a step reads of one upstream asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// One step key: the whole upstream, or the one partition mapped to the step's.
    Step(StepKey),
    /// Several partitions of a partitioned upstream: those whose windows overlap the step's window
    /// (the days of a week), or those an explicit [`PartitionMapping`] names.
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
