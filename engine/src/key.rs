//! Identifiers: asset keys, run ids and step ids as newtypes so they cannot be mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A path-like, project-unique asset name such as `sales/daily_orders`.
///
/// Each `/`-separated component starts with a letter and continues with letters, digits or `_`, so every
/// key is also a valid (quoted or dotted) SQL table name and no component collides with Delta's own
/// names (`_delta_log`, hidden `_`/`.` files).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AssetKey(String);

/// Why a string is not a valid asset key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid asset key '{key}': {reason}")]
pub struct InvalidKey {
    /// The rejected text.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl AssetKey {
    /// Parses and validates a key.
    pub fn parse(s: &str) -> Result<Self, InvalidKey> {
        let bad = |reason: &str| InvalidKey {
            key: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        for part in s.split('/') {
            let mut chars = part.chars();
            match chars.next() {
                None => {
                    return Err(bad(
                        "it has an empty path component (a leading, trailing or double '/')",
                    ))
                }
                // Delta treats names starting with '_' or '.' as its own (`_delta_log`) or hidden, and
                // a key's components are folders of the warehouse.
                Some('_') => {
                    return Err(bad(
                        "a component may not start with '_' (the warehouse reserves such names, e.g. _delta_log)",
                    ))
                }
                Some(c) if !c.is_ascii_alphabetic() => {
                    return Err(bad("each component must start with a letter"))
                }
                _ => {}
            }
            if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("components may contain only letters, digits and '_'"));
            }
        }
        Ok(AssetKey(s.to_string()))
    }

    /// The key as text, e.g. `sales/orders`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component (`orders` for `sales/orders`).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The key as an environment-variable suffix: `sales/orders` → `SALES__ORDERS`.
    pub fn env_suffix(&self) -> String {
        self.0.replace('/', "__").to_ascii_uppercase()
    }
}

impl TryFrom<String> for AssetKey {
    type Error = InvalidKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AssetKey::parse(&s)
    }
}

impl From<AssetKey> for String {
    fn from(k: AssetKey) -> String {
        k.0
    }
}

impl fmt::Display for AssetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one run. Time-ordered (UUID v7), so listing by id lists by start time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub String);

impl RunId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        RunId(uuid::Uuid::now_v7().simple().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one backfill. Time-ordered (UUID v7), like [`RunId`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BackfillId(pub String);

impl BackfillId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        BackfillId(uuid::Uuid::now_v7().simple().to_string())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for BackfillId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BackfillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies a step inside a run: the asset key (and, once partitions exist, the partition).
pub type StepId = String;

/// One partition of a partitioned asset, e.g. `2026-01-01` or `2026-01-01|eu`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionKey(pub String);

impl PartitionKey {
    /// The partition as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit of work: an asset, or one partition of it. Written `sales/orders` or
/// `sales/orders[2026-01-01]` (asset keys cannot contain `[`, so the form is unambiguous).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepKey {
    /// The asset.
    pub asset: AssetKey,
    /// The partition, for partitioned assets.
    pub partition: Option<PartitionKey>,
}

impl StepKey {
    /// The step of a whole (unpartitioned) asset.
    pub fn whole(asset: AssetKey) -> Self {
        StepKey {
            asset,
            partition: None,
        }
    }

    /// A step key as the run store keeps it: the partition column is `''` (or NULL) for none.
    pub fn from_stored(asset: &str, partition: &str) -> Result<Self, InvalidKey> {
        Ok(StepKey {
            asset: AssetKey::parse(asset)?,
            partition: (!partition.is_empty()).then(|| PartitionKey(partition.to_string())),
        })
    }

    /// The partition as stored in the run store (`''` for none).
    pub fn partition_str(&self) -> &str {
        self.partition.as_ref().map(|p| p.0.as_str()).unwrap_or("")
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partition {
            Some(p) => write!(f, "{}[{p}]", self.asset),
            None => write!(f, "{}", self.asset),
        }
    }
}

impl std::str::FromStr for StepKey {
    type Err = InvalidKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('[') {
            None => Ok(StepKey::whole(AssetKey::parse(s)?)),
            Some((asset, rest)) => {
                let partition = rest
                    .strip_suffix(']')
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| InvalidKey {
                        key: s.to_string(),
                        reason:
                            "a partition is written 'asset[partition]' with a non-empty partition"
                                .into(),
                    })?;
                Ok(StepKey {
                    asset: AssetKey::parse(asset)?,
                    partition: Some(PartitionKey(partition.to_string())),
                })
            }
        }
    }
}

impl TryFrom<String> for StepKey {
    type Error = InvalidKey;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<StepKey> for String {
    fn from(k: StepKey) -> String {
        k.to_string()
    }
}

/// Glob match with `*` (any run of characters) and `?` (one character).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys() {
        for k in ["orders", "sales/daily_orders", "x/y1/z_2_"] {
            assert_eq!(AssetKey::parse(k).unwrap().as_str(), k);
        }
        assert_eq!(
            AssetKey::parse("sales/orders").unwrap().env_suffix(),
            "SALES__ORDERS"
        );
        assert_eq!(AssetKey::parse("sales/orders").unwrap().name(), "orders");
    }

    #[test]
    fn step_keys_round_trip_through_text() {
        for s in [
            "sales/orders",
            "sales/orders[2026-01-01]",
            "a[2026-01-01|eu]",
        ] {
            let k: StepKey = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        let k: StepKey = "a/b[x]".parse().unwrap();
        assert_eq!(k.asset.as_str(), "a/b");
        assert_eq!(k.partition_str(), "x");
        assert_eq!(StepKey::whole(k.asset.clone()).partition_str(), "");
        for bad in ["a[", "a[]", "a[x", "1a[x]", "[x]"] {
            assert!(bad.parse::<StepKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_keys() {
        for k in [
            "",
            "/a",
            "a/",
            "a//b",
            "1abc",
            "a-b",
            "a b",
            "sales.orders",
            "q/_delta_log",
            "_x/y",
            "a/.hidden",
        ] {
            assert!(AssetKey::parse(k).is_err(), "{k} should be rejected");
        }
    }
}
