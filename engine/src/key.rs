//! Identifiers: asset keys, run ids and step ids as newtypes so they cannot be mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A path-like, project-unique asset name such as `sales/daily_orders`.
///
/// Each `/`-separated component starts with a letter or `_` and continues with letters, digits or `_`,
/// so every key is also a valid (quoted or dotted) SQL table name.
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
                Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                    return Err(bad("each component must start with a letter or '_'"))
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

/// Identifies a step inside a run: the asset key (and, once partitions exist, the partition).
pub type StepId = String;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_keys() {
        for k in ["orders", "sales/daily_orders", "_x/y1/z_2"] {
            assert_eq!(AssetKey::parse(k).unwrap().as_str(), k);
        }
        assert_eq!(
            AssetKey::parse("sales/orders").unwrap().env_suffix(),
            "SALES__ORDERS"
        );
        assert_eq!(AssetKey::parse("sales/orders").unwrap().name(), "orders");
    }

    #[test]
    fn invalid_keys() {
        for k in ["", "/a", "a/", "a//b", "1abc", "a-b", "a b", "sales.orders"] {
            assert!(AssetKey::parse(k).is_err(), "{k} should be rejected");
        }
    }
}
