//! Sensors: runs requested by new objects under a prefix, defined in YAML under `sensors/` and
//! evaluated by the daemon (`eval.rs`).
//!
//! ```yaml
//! # sensors/landed_orders.yaml (one sensor, or `sensors: [...]`)
//! name: landed_orders
//! objects: landing/orders/      # a folder (relative to the project), or a URL: file:///…, s3://bucket/prefix/
//! pattern: "*.csv"              # optional: which object names count (`*` and `?`)
//! select: raw_orders+           # the selection its runs cover (default: every asset)
//! add_partitions: order_files   # optional: each new object's name (without extension) becomes a key of
//!                               # this dynamic partition set, and the run covers those partitions
//! ```
//!
//! The daemon lists the prefix on every pass. Objects modified after the sensor's cursor (the newest
//! modification time it has launched a run for) are new: one run covers all of them, recorded as a
//! tick keyed by the sensor and that newest time (milliseconds), in one transaction with the run. So
//! an object is acted on once however often the daemon restarts, and an object written again later
//! (a newer modification time) is new again. A sensor's first pass acts on every object already there.

use std::path::Path;
use url::Url;

/// A validated sensor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SensorDef {
    /// Unique name (among schedules and sensors).
    pub name: String,
    /// The prefix listed, as a directory URL.
    pub objects: Url,
    /// Which object names count.
    pub pattern: Option<String>,
    /// The selection its runs cover.
    pub selection: Option<String>,
    /// The dynamic partition set new objects' names are added to.
    pub add_partitions: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSensor {
    name: String,
    objects: String,
    pattern: Option<String>,
    select: Option<String>,
    add_partitions: Option<String>,
}

impl SensorDef {
    pub(crate) fn parse(raw: RawSensor, root: &Path) -> Result<Self, String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !plain(&raw.name) {
            return Err(format!(
                "sensor name '{}' must be letters, digits, '_' or '-'",
                raw.name
            ));
        }
        if raw.name == "automation" {
            return Err("the name 'automation' is reserved (the daemon records automation conditions' runs under it)".into());
        }
        let objects = match Url::parse(&raw.objects) {
            Ok(u) if u.scheme().len() > 1 => u,
            // A path: relative to the project root.
            _ => {
                let path = root.join(&raw.objects);
                Url::from_directory_path(&path).map_err(|_| {
                    format!(
                        "objects '{}' is neither a URL nor a folder path",
                        raw.objects
                    )
                })?
            }
        };
        let objects = if objects.path().ends_with('/') {
            objects
        } else {
            Url::parse(&format!("{objects}/")).map_err(|e| format!("objects: {e}"))?
        };
        if let Some(p) = &raw.pattern {
            if p.is_empty() || p.contains('/') {
                return Err(format!(
                    "pattern '{p}' matches object names (no '/'): e.g. \"*.csv\""
                ));
            }
        }
        Ok(SensorDef {
            name: raw.name,
            objects,
            pattern: raw.pattern,
            selection: raw.select,
            add_partitions: raw.add_partitions,
        })
    }

    /// Whether an object's name counts.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern
            .as_deref()
            .is_none_or(|p| crate::key::glob_match(p, name))
    }
}

/// A partition key from an object's name: without its extension, characters a key cannot hold as `_`.
pub fn key_of(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    };
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_keys_of_object_names() {
        let glob = crate::key::glob_match;
        assert!(glob("*.csv", "orders-1.csv"));
        assert!(!glob("*.csv", "orders-1.csv.tmp"));
        assert!(glob("orders-??.*", "orders-12.json"));
        assert!(!glob("orders-??.*", "orders-123.json"));
        assert_eq!(key_of("orders 2026-01-02.csv"), "orders_2026-01-02");
        assert_eq!(key_of("a.b.parquet"), "a.b");
        assert_eq!(key_of(".hidden"), ".hidden");
        assert_eq!(key_of("x|y"), "x_y");
    }
}
