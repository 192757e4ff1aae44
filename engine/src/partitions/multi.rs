//! Multi-dimensional partitions: the product of two to four one-dimensional definitions, e.g. date ×
//! region, as Dagster's `MultiPartitionsDefinition`.
//!
//! ```yaml
//! partitions:
//!   multi:
//!     date: { daily: { start: 2026-01-01 } }
//!     region: { static: [eu, us] }
//! ```
//!
//! Dimensions are ordered by name (as Dagster orders them); a key joins one key per dimension with `|`
//! (`2026-01-01|eu`); keys run through the first dimension slowest. Each dimension is a Delta partition
//! column named after it, so the table is partitioned by `date` and `region`. At most one dimension
//! may be time windows; it gives a partition its window (`{{ partition_start }}`).

use super::{PartitionsDef, PartitionsKind, Window};
use crate::key::PartitionKey;
use chrono::{DateTime, Utc};

/// One dimension of a multi-dimensional definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// Its name: the Delta partition column and the `{{ partition_key.NAME }}` placeholder.
    pub name: String,
    /// Its partitions (static, time windows or dynamic; never multi).
    pub kind: PartitionsKind,
}

/// Parses `multi: {NAME: DEFINITION, …}`; the error is a sentence for E0210.
pub(super) fn parse(
    dims: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Dimension>, String> {
    if !(2..=4).contains(&dims.len()) {
        return Err(format!(
            "`multi` takes two to four dimensions, not {} (write e.g. `multi: {{date: {{daily: {{start: 2026-01-01}}}}, region: {{static: [eu, us]}}}}`)",
            dims.len()
        ));
    }
    let mut out = Vec::new();
    for (name, v) in dims {
        super::check_column(name).map_err(|e| format!("dimension '{name}': {e}"))?;
        if v.get("multi").is_some() || v.get("column").is_some() {
            return Err(format!(
                "dimension '{name}' is one definition (static, dynamic or time windows) without `multi` or `column`: the dimension's name is its column"
            ));
        }
        let def = PartitionsDef::parse(v).map_err(|e| format!("dimension '{name}': {e}"))?;
        if let PartitionsKind::Static(keys) = &def.kind {
            if let Some(k) = keys.iter().find(|k| k.0.contains('|')) {
                return Err(format!(
                    "dimension '{name}': key '{k}' contains '|', which joins the dimensions' keys"
                ));
            }
        }
        out.push(Dimension {
            name: name.clone(),
            kind: def.kind,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out
        .iter()
        .filter(|d| matches!(d.kind, PartitionsKind::Time(_)))
        .count()
        > 1
    {
        return Err("at most one dimension of `multi` may be time windows".into());
    }
    Ok(out)
}

fn one(kind: &PartitionsKind) -> PartitionsDef {
    PartitionsDef {
        kind: kind.clone(),
        column: String::new(),
    }
}

/// Every key at `now`: the product of the dimensions' keys, the first dimension slowest.
pub(super) fn keys(dims: &[Dimension], now: DateTime<Utc>) -> Vec<PartitionKey> {
    let mut out: Vec<String> = vec![String::new()];
    for (i, d) in dims.iter().enumerate() {
        let ks = one(&d.kind).keys(now);
        let mut next = Vec::with_capacity(out.len() * ks.len());
        for prefix in &out {
            for k in &ks {
                next.push(if i == 0 {
                    k.0.clone()
                } else {
                    format!("{prefix}|{}", k.0)
                });
            }
        }
        out = next;
    }
    out.into_iter().map(PartitionKey).collect()
}

/// `key`'s key in each dimension; the error says what is wrong.
pub fn split<'a>(dims: &[Dimension], key: &'a PartitionKey) -> Result<Vec<&'a str>, String> {
    let parts: Vec<&str> = key.as_str().split('|').collect();
    if parts.len() != dims.len() {
        return Err(format!(
            "'{key}' is not a key of the dimensions {}: write one key per dimension joined by '|' (e.g. '{}')",
            dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(" × "),
            dims.iter().map(|d| format!("<{}>", d.name)).collect::<Vec<_>>().join("|")
        ));
    }
    Ok(parts)
}

/// Whether `key` is a partition at `now`.
pub(super) fn check(
    dims: &[Dimension],
    key: &PartitionKey,
    now: DateTime<Utc>,
) -> Result<(), String> {
    for (d, part) in dims.iter().zip(split(dims, key)?) {
        one(&d.kind)
            .check(&PartitionKey(part.to_string()), now)
            .map_err(|e| format!("dimension '{}': {e}", d.name))?;
    }
    Ok(())
}

/// The window of `key`'s time dimension, if it has one.
pub(super) fn window(dims: &[Dimension], key: &PartitionKey) -> Option<Window> {
    let parts = split(dims, key).ok()?;
    dims.iter().zip(parts).find_map(|(d, p)| match &d.kind {
        PartitionsKind::Time(t) => t.window(&PartitionKey(p.to_string())),
        _ => None,
    })
}

/// Each dimension's column with `key`'s value in it.
pub(super) fn values(dims: &[Dimension], key: &PartitionKey) -> Vec<(String, String)> {
    let parts = split(dims, key).unwrap_or_default();
    dims.iter()
        .zip(parts)
        .map(|(d, p)| (d.name.clone(), p.to_string()))
        .collect()
}

/// The dimension whose definition is `other`'s, if exactly one is (what maps a multi-dimensional
/// asset to a one-dimensional one, as Dagster's `MultiToSingleDimensionPartitionMapping` infers).
pub fn matching(dims: &[Dimension], other: &PartitionsKind) -> Option<usize> {
    let mut found = dims.iter().enumerate().filter(|(_, d)| &d.kind == other);
    match (found.next(), found.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The keys of `dims` whose dimension `i` is `part`, when the other dimensions are not time windows
/// (their keys do not depend on the time); `None` otherwise.
pub fn with_part(dims: &[Dimension], i: usize, part: &PartitionKey) -> Option<Vec<PartitionKey>> {
    let mut out: Vec<String> = vec![String::new()];
    for (j, d) in dims.iter().enumerate() {
        let ks: Vec<String> = if j == i {
            vec![part.0.clone()]
        } else {
            match &d.kind {
                PartitionsKind::Time(_) | PartitionsKind::Multi(_) => return None,
                PartitionsKind::Static(k) | PartitionsKind::Dynamic { keys: k, .. } => {
                    k.iter().map(|k| k.0.clone()).collect()
                }
            }
        };
        out = out
            .iter()
            .flat_map(|prefix| {
                ks.iter().map(move |k| {
                    if j == 0 {
                        k.clone()
                    } else {
                        format!("{prefix}|{k}")
                    }
                })
            })
            .collect();
    }
    Some(out.into_iter().map(PartitionKey).collect())
}

/// The keys whose key in one dimension is among `parts` — the dimension whose partitions they all
/// are, if exactly one is (`--partition 2026-01-02` of a `date|region` asset: every region of the day).
pub(super) fn covering(
    dims: &[Dimension],
    parts: &[PartitionKey],
    now: DateTime<Utc>,
) -> Option<Vec<PartitionKey>> {
    let mut fits = dims
        .iter()
        .enumerate()
        .filter(|(_, d)| parts.iter().all(|p| one(&d.kind).check(p, now).is_ok()));
    let (i, _) = match (fits.next(), fits.next()) {
        (Some(f), None) => f,
        _ => return None,
    };
    let wanted: std::collections::HashSet<&str> = parts.iter().map(|p| p.as_str()).collect();
    Some(
        keys(dims, now)
            .into_iter()
            .filter(|k| split(dims, k).is_ok_and(|v| wanted.contains(v[i])))
            .collect(),
    )
}

/// [`covering`] for a range of one dimension's keys.
pub(super) fn covering_range(
    dims: &[Dimension],
    from: &PartitionKey,
    to: &PartitionKey,
    now: DateTime<Utc>,
) -> Option<Vec<PartitionKey>> {
    let mut ranges = dims
        .iter()
        .filter_map(|d| one(&d.kind).range(from, to, now).ok());
    match (ranges.next(), ranges.next()) {
        (Some(r), None) => covering(dims, &r, now),
        _ => None,
    }
}
