//! Data checks declared beside an asset (`checks:` in its YAML), as definitions: what each check is
//! and the query that finds its failing rows. `crate::checks` runs them on every new materialization
//! after its Delta commit and before it is published (write-audit-publish).
//!
//! ```yaml
//! checks:
//!   - not_null: [order_id, amount]
//!   - unique: order_id                      # or [customer_id, day] for a composite key
//!   - accepted_values: {column: status, values: [paid, refunded]}
//!   - relationships: {column: customer_id, to: customers, field: id}
//!   - row_count: {min: 1, max: 10000000, max_change_pct: 50}
//!   - freshness: {column: ordered_at, max_age: 2d}
//!   - expression: amount >= 0               # every row must satisfy it
//!   - sql: SELECT * FROM this WHERE amount > 10000   # failing rows; `this` is the new data
//!     severity: warn                        # `error` (default): a failure keeps the version unpublished
//!     name: no_huge_orders                  # default: kind and columns, e.g. not_null_order_id_amount
//! ```
//!
//! Each check is a query over `this` (the new materialization's rows: for a partition, that
//! partition's) returning the failing rows; it passes when there are none. `row_count`'s change is
//! measured against the previous published materialization of the same step key.

use crate::key::AssetKey;
use spine_schemas::events::CheckSeverity;
use std::time::Duration;

/// A validated check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDef {
    /// Unique among the asset's checks.
    pub name: String,
    /// What it checks.
    pub kind: CheckKind,
    /// What a failure does.
    pub severity: CheckSeverity,
}

/// The kinds of checks.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// No NULL in these columns.
    NotNull(Vec<String>),
    /// No two rows share these columns' values.
    Unique(Vec<String>),
    /// The column holds only these values (NULL aside).
    AcceptedValues {
        /// The column.
        column: String,
        /// Its allowed values, as SQL literals.
        values: Vec<String>,
    },
    /// Every non-NULL value of `column` exists in `field` of asset `to` (its latest published data).
    Relationships {
        /// This asset's column.
        column: String,
        /// The other asset.
        to: AssetKey,
        /// Its column.
        field: String,
    },
    /// The row count is within bounds, and changed by at most `max_change_pct` percent since the
    /// previous published materialization.
    RowCount {
        /// At least.
        min: Option<i64>,
        /// At most.
        max: Option<i64>,
        /// At most this change, in percent.
        max_change_pct: Option<f64>,
    },
    /// The newest value of a timestamp or date column is at most `max_age` old (by the engine's clock).
    Freshness {
        /// The column.
        column: String,
        /// How old it may be.
        max_age: Duration,
    },
    /// Every row satisfies this SQL predicate.
    Expression(String),
    /// This query over `this` returns the failing rows.
    Sql(String),
}

impl CheckKind {
    /// The kind's name as written.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::NotNull(_) => "not_null",
            CheckKind::Unique(_) => "unique",
            CheckKind::AcceptedValues { .. } => "accepted_values",
            CheckKind::Relationships { .. } => "relationships",
            CheckKind::RowCount { .. } => "row_count",
            CheckKind::Freshness { .. } => "freshness",
            CheckKind::Expression(_) => "expression",
            CheckKind::Sql(_) => "sql",
        }
    }

    /// The other assets the check reads.
    pub fn reads(&self) -> Option<&AssetKey> {
        match self {
            CheckKind::Relationships { to, .. } => Some(to),
            _ => None,
        }
    }
}

/// `"id"` as a SQL identifier.
fn ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

fn columns(v: &serde_json::Value, what: &str) -> Result<Vec<String>, String> {
    let cols: Vec<String> = match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{what}` takes a column or a list of columns"))?,
        _ => return Err(format!("`{what}` takes a column or a list of columns")),
    };
    if cols.is_empty() || cols.iter().any(|c| c.is_empty()) {
        return Err(format!("`{what}` names no column"));
    }
    Ok(cols)
}

fn field<'a>(o: &'a serde_json::Value, what: &str, name: &str) -> Result<&'a str, String> {
    o.get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("`{what}` needs `{name}:`"))
}

fn only(o: &serde_json::Value, what: &str, allowed: &[&str]) -> Result<(), String> {
    let Some(m) = o.as_object() else {
        return Err(format!("`{what}` takes a mapping ({})", allowed.join(", ")));
    };
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "`{what}` has no field `{k}` (it takes {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// A YAML value as a SQL literal.
fn literal(v: &serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "accepted value {v} is not a string, number or boolean"
        )),
    }
}

/// Parses `checks:`; the error is a sentence for E0230.
pub fn parse_checks(v: &serde_json::Value) -> Result<Vec<CheckDef>, String> {
    let items = v
        .as_array()
        .ok_or("`checks:` is a list, e.g. `checks: [{not_null: [id]}, {unique: id}]`")?;
    let mut out: Vec<CheckDef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |m: String| format!("check {}: {m}", i + 1);
        let map = item
            .as_object()
            .ok_or_else(|| at("a check is a mapping like `{not_null: [id]}`".into()))?;
        let severity = match map.get("severity").map(|s| s.as_str()) {
            None | Some(Some("error")) => CheckSeverity::Error,
            Some(Some("warn")) => CheckSeverity::Warn,
            Some(_) => return Err(at("`severity` is `error` or `warn`".into())),
        };
        let kinds: Vec<(&String, &serde_json::Value)> = map
            .iter()
            .filter(|(k, _)| k.as_str() != "severity" && k.as_str() != "name")
            .collect();
        let [(kind, body)] = kinds.as_slice() else {
            return Err(at(format!(
                "give exactly one check kind (not_null, unique, accepted_values, relationships, row_count, freshness, expression, sql), not {}",
                kinds.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        let kind = parse_kind(kind, body).map_err(at)?;
        let name = match map.get("name") {
            Some(n) => n
                .as_str()
                .filter(|n| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .ok_or_else(|| at("`name` is letters, digits and '_'".into()))?
                .to_string(),
            None => default_name(&kind, i),
        };
        if out.iter().any(|c| c.name == name) {
            return Err(at(format!(
                "two checks are named '{name}' (give one a `name:`)"
            )));
        }
        out.push(CheckDef {
            name,
            kind,
            severity,
        });
    }
    Ok(out)
}

fn parse_kind(kind: &str, body: &serde_json::Value) -> Result<CheckKind, String> {
    Ok(match kind {
        "not_null" => CheckKind::NotNull(columns(body, kind)?),
        "unique" => CheckKind::Unique(columns(body, kind)?),
        "accepted_values" => {
            only(body, kind, &["column", "values"])?;
            let values = body
                .get("values")
                .and_then(|v| v.as_array())
                .filter(|v| !v.is_empty())
                .ok_or("`accepted_values` needs `values:` (a non-empty list)")?
                .iter()
                .map(literal)
                .collect::<Result<_, _>>()?;
            CheckKind::AcceptedValues { column: field(body, kind, "column")?.into(), values }
        }
        "relationships" => {
            only(body, kind, &["column", "to", "field"])?;
            let to = AssetKey::parse(field(body, kind, "to")?).map_err(|e| format!("`relationships` to: {e}"))?;
            CheckKind::Relationships {
                column: field(body, kind, "column")?.into(),
                field: field(body, kind, "field")?.into(),
                to,
            }
        }
        "row_count" => {
            only(body, kind, &["min", "max", "max_change_pct"])?;
            let int = |k: &str| -> Result<Option<i64>, String> {
                match body.get(k) {
                    None => Ok(None),
                    Some(v) => v.as_i64().filter(|n| *n >= 0).map(Some).ok_or(format!("`row_count` {k} is a whole number ≥ 0")),
                }
            };
            let (min, max) = (int("min")?, int("max")?);
            let max_change_pct = match body.get("max_change_pct") {
                None => None,
                Some(v) => Some(v.as_f64().filter(|p| *p >= 0.0).ok_or("`row_count` max_change_pct is a number ≥ 0")?),
            };
            if min.is_none() && max.is_none() && max_change_pct.is_none() {
                return Err("`row_count` needs `min`, `max` or `max_change_pct`".into());
            }
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    return Err(format!("`row_count` min {a} is above max {b}"));
                }
            }
            CheckKind::RowCount { min, max, max_change_pct }
        }
        "freshness" => {
            only(body, kind, &["column", "max_age"])?;
            let age = field(body, kind, "max_age")?;
            let max_age = crate::duration::parse_duration(age).map_err(|e| format!("`freshness` max_age: {e}"))?;
            CheckKind::Freshness { column: field(body, kind, "column")?.into(), max_age }
        }
        "expression" => CheckKind::Expression(
            body.as_str().filter(|s| !s.trim().is_empty()).ok_or("`expression` is a SQL predicate, e.g. `amount >= 0`")?.to_string(),
        ),
        "sql" => CheckKind::Sql(
            body.as_str().filter(|s| !s.trim().is_empty()).ok_or("`sql` is a query over `this` returning the failing rows")?.to_string(),
        ),
        other => {
            return Err(format!(
                "unknown check '{other}' (not_null, unique, accepted_values, relationships, row_count, freshness, expression, sql)"
            ))
        }
    })
}

fn default_name(kind: &CheckKind, i: usize) -> String {
    let cols = match kind {
        CheckKind::NotNull(c) | CheckKind::Unique(c) => c.join("_"),
        CheckKind::AcceptedValues { column, .. }
        | CheckKind::Relationships { column, .. }
        | CheckKind::Freshness { column, .. } => column.clone(),
        CheckKind::RowCount { .. } => return "row_count".into(),
        CheckKind::Expression(_) | CheckKind::Sql(_) => (i + 1).to_string(),
    };
    let cols: String = cols
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}_{cols}", kind.as_str())
}

/// The query returning a check's failing rows over `this` (and, for `relationships`, `other`), given
/// the engine's time (for `freshness`). `row_count` has none: it is decided from counts.
pub(crate) fn failing_rows_sql(
    kind: &CheckKind,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    Some(match kind {
        CheckKind::NotNull(cols) => format!(
            "SELECT * FROM this WHERE {}",
            cols.iter().map(|c| format!("{} IS NULL", ident(c))).collect::<Vec<_>>().join(" OR ")
        ),
        CheckKind::Unique(cols) => {
            let list = cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
            format!("SELECT {list}, COUNT(*) AS duplicates FROM this GROUP BY {list} HAVING COUNT(*) > 1")
        }
        CheckKind::AcceptedValues { column, values } => format!(
            "SELECT * FROM this WHERE {c} IS NOT NULL AND {c} NOT IN ({})",
            values.join(", "),
            c = ident(column)
        ),
        CheckKind::Relationships { column, field, .. } => format!(
            "SELECT * FROM this WHERE {c} IS NOT NULL AND {c} NOT IN (SELECT {f} FROM other WHERE {f} IS NOT NULL)",
            c = ident(column),
            f = ident(field)
        ),
        CheckKind::Freshness { column, max_age } => {
            let oldest = now - chrono::Duration::from_std(*max_age).unwrap_or(chrono::Duration::zero());
            format!(
                "SELECT MAX({c}) AS newest FROM this HAVING MAX({c}) IS NULL OR CAST(MAX({c}) AS TIMESTAMP) < CAST('{}' AS TIMESTAMP)",
                oldest.format("%Y-%m-%d %H:%M:%S%.3f"),
                c = ident(column)
            )
        }
        CheckKind::Expression(e) => format!("SELECT * FROM this WHERE ({e}) IS NOT TRUE"),
        CheckKind::Sql(q) => q.trim().trim_end_matches(';').to_string(),
        CheckKind::RowCount { .. } => return None,
    })
}

#[cfg(test)]
mod tests;
