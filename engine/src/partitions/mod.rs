//! Partition definitions: how an asset is split into partitions (asset YAML `partitions:`), which
//! partitions exist at a given time, and what a partition's window is.
//!
//! ```yaml
//! partitions:
//!   daily: { start: 2026-01-01, end: 2027-01-01, timezone: Europe/Berlin }   # or hourly / weekly / monthly
//!   column: day                 # the Delta partition column (default: partition_key)
//! ---
//! partitions:
//!   static: [eu, us, apac]
//! ---
//! partitions:
//!   dynamic: customers          # keys added at run time: assets partitions add customers acme globex
//! ---
//! partitions:
//!   multi:                      # the product of dimensions (see `multi`): keys like 2026-01-01|eu
//!     date: { daily: { start: 2026-01-01 } }
//!     region: { static: [eu, us] }
//! ```
//!
//! A time-window definition has one partition per window from `start` (inclusive) in steps of an hour,
//! a day, a week or a calendar month, in `timezone` (default UTC), keyed by `format` (strftime; default
//! `%Y-%m-%d`, hourly `%Y-%m-%d-%H:%M`, as Dagster). A window exists once it has ended (as Dagster:
//! today's partition appears tomorrow) and before `end` (exclusive), if given.

mod mapping;
pub(crate) mod multi;
mod ranges;
mod time;

pub use mapping::{PartitionMapping, PartitionSelection, Upstream};
pub use multi::Dimension;
pub use ranges::{compress, PartitionRange};
pub use time::{Cadence, TimeWindows};

use crate::key::PartitionKey;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The Delta partition column when a definition names none.
pub const DEFAULT_COLUMN: &str = "partition_key";

/// How an asset is partitioned.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionsDef {
    /// The partitions.
    pub kind: PartitionsKind,
    /// The table's Delta partition column holding the partition key (a multi-dimensional table has
    /// one per dimension instead: [`PartitionsDef::columns`]).
    pub column: String,
}

/// The kinds of partition definitions.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionsKind {
    /// A fixed list.
    Static(Vec<PartitionKey>),
    /// Consecutive time windows.
    Time(TimeWindows),
    /// Keys added at run time (`assets partitions add NAME KEY…`), kept in the run store under `name`;
    /// `keys` is what the store held when the engine opened.
    Dynamic {
        /// The set's name (several assets may share it).
        name: String,
        /// Its keys, in the order they were added.
        keys: Vec<PartitionKey>,
    },
    /// The product of two to four dimensions, ordered by name.
    Multi(Vec<Dimension>),
}

/// A partition's time window, rendered for SQL (RFC 3339 with the definition's UTC offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<chrono::FixedOffset>,
    /// Exclusive end.
    pub end: DateTime<chrono::FixedOffset>,
}

/// `partitions:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDef {
    #[serde(rename = "static")]
    static_keys: Option<Vec<String>>,
    hourly: Option<time::RawWindows>,
    daily: Option<time::RawWindows>,
    weekly: Option<time::RawWindows>,
    monthly: Option<time::RawWindows>,
    dynamic: Option<String>,
    multi: Option<serde_json::Map<String, serde_json::Value>>,
    column: Option<String>,
}

impl PartitionsDef {
    /// Parses and validates a `partitions:` value. The error is a sentence for E0210.
    pub fn parse(value: &serde_json::Value) -> Result<Self, String> {
        let raw: RawDef = serde_json::from_value(value.clone()).map_err(|e| {
            format!("{e} (write e.g. `partitions: {{daily: {{start: 2026-01-01}}}}` or `partitions: {{static: [eu, us]}}`)")
        })?;
        if raw.multi.is_some() && raw.column.is_some() {
            return Err(
                "a `multi` definition takes no `column`: each dimension's name is its column"
                    .into(),
            );
        }
        let column = raw.column.unwrap_or_else(|| DEFAULT_COLUMN.to_string());
        check_column(&column)?;
        let mut kinds = Vec::new();
        if let Some(dims) = raw.multi {
            kinds.push(PartitionsKind::Multi(multi::parse(&dims)?));
        }
        if let Some(keys) = raw.static_keys {
            kinds.push(PartitionsKind::Static(static_keys(keys)?));
        }
        if let Some(name) = raw.dynamic {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!(
                    "dynamic partitions name '{name}' must be letters, digits, '_' or '-'"
                ));
            }
            kinds.push(PartitionsKind::Dynamic {
                name,
                keys: Vec::new(),
            });
        }
        for (cadence, w) in [
            (Cadence::Hourly, raw.hourly),
            (Cadence::Daily, raw.daily),
            (Cadence::Weekly, raw.weekly),
            (Cadence::Monthly, raw.monthly),
        ] {
            if let Some(w) = w {
                kinds.push(PartitionsKind::Time(TimeWindows::new(cadence, w)?));
            }
        }
        match kinds.len() {
            1 => Ok(PartitionsDef {
                kind: kinds.remove(0),
                column,
            }),
            0 => Err("name the partitions: one of `static`, `dynamic`, `hourly`, `daily`, `weekly`, `monthly`, `multi`".into()),
            _ => Err("give exactly one of `static`, `dynamic`, `hourly`, `daily`, `weekly`, `monthly` (several dimensions: `multi: {NAME: DEFINITION, …}`)".into()),
        }
    }

    /// Every partition that exists at `now`, in order.
    pub fn keys(&self, now: DateTime<Utc>) -> Vec<PartitionKey> {
        match &self.kind {
            PartitionsKind::Static(keys) | PartitionsKind::Dynamic { keys, .. } => keys.clone(),
            PartitionsKind::Time(t) => t.keys(now),
            PartitionsKind::Multi(dims) => multi::keys(dims, now),
        }
    }

    /// The Delta partition columns of a table of these partitions, in order.
    pub fn columns(&self) -> Vec<String> {
        match &self.kind {
            PartitionsKind::Multi(dims) => dims.iter().map(|d| d.name.clone()).collect(),
            _ => vec![self.column.clone()],
        }
    }

    /// The dynamic partition sets these partitions use (one, or one per dynamic dimension).
    pub fn dynamic_sets(&self) -> Vec<&str> {
        match &self.kind {
            PartitionsKind::Dynamic { name, .. } => vec![name.as_str()],
            PartitionsKind::Multi(dims) => dims
                .iter()
                .filter_map(|d| match &d.kind {
                    PartitionsKind::Dynamic { name, .. } => Some(name.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Gives dynamic partition sets (and dynamic dimensions) the keys `sets` holds.
    pub fn fill_dynamic(&mut self, sets: &std::collections::HashMap<String, Vec<PartitionKey>>) {
        let fill = |kind: &mut PartitionsKind| {
            if let PartitionsKind::Dynamic { name, keys } = kind {
                *keys = sets.get(name.as_str()).cloned().unwrap_or_default();
            }
        };
        match &mut self.kind {
            PartitionsKind::Multi(dims) => dims.iter_mut().for_each(|d| fill(&mut d.kind)),
            other => fill(other),
        }
    }

    /// Whether `key` is a partition of this definition at `now`; the error says why not.
    pub fn check(&self, key: &PartitionKey, now: DateTime<Utc>) -> Result<(), String> {
        match &self.kind {
            PartitionsKind::Static(keys) if keys.contains(key) => Ok(()),
            PartitionsKind::Dynamic { keys, .. } if keys.contains(key) => Ok(()),
            PartitionsKind::Dynamic { name, .. } => Err(format!(
                "'{key}' is not one of the dynamic partitions '{name}' (add it: assets partitions add {name} {key})"
            )),
            PartitionsKind::Static(keys) => Err(format!(
                "'{key}' is not one of its partitions ({})",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            PartitionsKind::Time(t) => t.check(key, now),
            PartitionsKind::Multi(dims) => multi::check(dims, key, now),
        }
    }

    /// The partitions from `from` to `to` (both inclusive) that exist at `now`.
    pub fn range(
        &self,
        from: &PartitionKey,
        to: &PartitionKey,
        now: DateTime<Utc>,
    ) -> Result<Vec<PartitionKey>, String> {
        self.check(from, now)?;
        self.check(to, now)?;
        let all = self.keys(now);
        let pos = |k: &PartitionKey| all.iter().position(|x| x == k);
        match (pos(from), pos(to)) {
            (Some(a), Some(b)) if a <= b => Ok(all[a..=b].to_vec()),
            (Some(_), Some(_)) => Err(format!(
                "the range {from}..{to} is empty: '{from}' comes after '{to}'"
            )),
            _ => Err(format!(
                "{from}..{to} is not a range of existing partitions"
            )),
        }
    }

    /// For multi-dimensional partitions given keys of one dimension (no `|`): every partition whose
    /// key in that dimension is one of them; `None` otherwise.
    pub fn covering(&self, keys: &[PartitionKey], now: DateTime<Utc>) -> Option<Vec<PartitionKey>> {
        match &self.kind {
            PartitionsKind::Multi(dims) if keys.iter().all(|k| !k.0.contains('|')) => {
                multi::covering(dims, keys, now)
            }
            _ => None,
        }
    }

    /// [`PartitionsDef::covering`] for a range of one dimension's keys.
    pub fn covering_range(
        &self,
        from: &PartitionKey,
        to: &PartitionKey,
        now: DateTime<Utc>,
    ) -> Option<Vec<PartitionKey>> {
        match &self.kind {
            PartitionsKind::Multi(dims) if !from.0.contains('|') && !to.0.contains('|') => {
                multi::covering_range(dims, from, to, now)
            }
            _ => None,
        }
    }

    /// For time windows, the partitions that exist at `now` and overlap the span `from..to` names,
    /// when `from` and `to` are not both keys of these windows (another asset's keys: days for a
    /// weekly asset). `None` for other partitions, or when the span names no time.
    pub fn overlapping_range(
        &self,
        from: &PartitionKey,
        to: &PartitionKey,
        now: DateTime<Utc>,
    ) -> Option<Vec<PartitionKey>> {
        match &self.kind {
            PartitionsKind::Time(t) => {
                let (start, end) = t.span(from.as_str(), to.as_str())?;
                Some(t.overlapping_at(start, end, now))
            }
            _ => None,
        }
    }

    /// The partitions whose time windows overlap `window` (none for static partitions).
    pub fn overlapping(&self, window: &Window) -> Vec<PartitionKey> {
        match &self.kind {
            PartitionsKind::Static(_)
            | PartitionsKind::Dynamic { .. }
            | PartitionsKind::Multi(_) => Vec::new(),
            PartitionsKind::Time(t) => t.overlapping(
                window.start.with_timezone(&Utc),
                window.end.with_timezone(&Utc),
            ),
        }
    }

    /// The Delta partition columns of a table of these partitions, with `key`'s value in each.
    pub fn values(&self, key: &PartitionKey) -> Vec<(String, String)> {
        match &self.kind {
            PartitionsKind::Multi(dims) => multi::values(dims, key),
            _ => vec![(self.column.clone(), key.0.clone())],
        }
    }

    /// `key`'s value of dimension `name` (`{{ partition_key.NAME }}`), for multi-dimensional partitions.
    pub fn dimension(&self, key: &PartitionKey, name: &str) -> Option<String> {
        self.values(key)
            .into_iter()
            .find(|(c, _)| c == name)
            .filter(|_| matches!(self.kind, PartitionsKind::Multi(_)))
            .map(|(_, v)| v)
    }

    /// The time window of `key`, for time-window partitions (and a multi-dimensional key's time
    /// dimension).
    pub fn window(&self, key: &PartitionKey) -> Option<Window> {
        match &self.kind {
            PartitionsKind::Static(_) | PartitionsKind::Dynamic { .. } => None,
            PartitionsKind::Time(t) => t.window(key),
            PartitionsKind::Multi(dims) => multi::window(dims, key),
        }
    }
}

/// A Delta partition column's name is plain: letters, digits and '_', not starting with a digit.
fn check_column(column: &str) -> Result<(), String> {
    let valid = column
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && column
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "column '{column}' is not a plain column name (letters, digits and '_')"
        ))
    }
}

/// Validates a static list: non-empty keys, unique, of characters that are safe in paths, SQL string
/// literals and the `asset[partition]` form.
fn static_keys(keys: Vec<String>) -> Result<Vec<PartitionKey>, String> {
    if keys.is_empty() {
        return Err("`static` lists no partitions".into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        validate_key(&k)?;
        if !seen.insert(k.clone()) {
            return Err(format!("partition '{k}' is listed twice"));
        }
        out.push(PartitionKey(k));
    }
    Ok(out)
}

/// A partition key is non-empty and made of letters, digits and `-_.:|+`.
pub fn validate_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        return Err("a partition key is empty".into());
    }
    if let Some(c) = k
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:|+".contains(*c)))
    {
        return Err(format!(
            "partition key '{k}' contains '{c}'; use letters, digits and - _ . : | +"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
