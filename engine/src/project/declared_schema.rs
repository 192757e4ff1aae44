//! A declared output schema (`schema:`): the columns an asset produces, known without running it, so
//! `assets check` plans the SQL downstream of a command asset or a source on a brand-new project, and a
//! materialization whose output differs is refused (a contract, as dbt's `contract: {enforced: true}`).
//!
//! ```yaml
//! schema:
//!   - order_id: int64
//!   - amount: float64
//!   - {name: currency, type: string}
//!   - {name: total, type: float64, from: [stg/orders.amount], how: aggregated}
//! ```
//!
//! `from:` declares a column's lineage where Spine cannot derive it (command and Rust assets): the
//! upstream `ASSET.COLUMN`s it comes from, `how` one of `identity`, `transformed` (default),
//! `aggregated`, `filter`. It is recorded with each materialization like a SQL asset's derived lineage.
//!
//! Type names: `bool`, `int8`…`int64`, `uint8`…`uint64`, `float32`/`float64` (`float`, `double`),
//! `string` (`text`, `utf8`), `large_string`, `binary`, `date`, `timestamp` (microseconds, no zone),
//! `timestamptz` (microseconds, UTC), `decimal(P,S)`, or any Arrow type name (`Timestamp(ns, "UTC")`).

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::str::FromStr;
use std::sync::Arc;

/// Parses a `schema:` value; the error is a sentence for E0250.
pub fn parse(v: &serde_json::Value) -> Result<SchemaRef, String> {
    const USAGE: &str =
        "write a list of `- COLUMN: TYPE` (or `- {name: COLUMN, type: TYPE, from: [ASSET.COLUMN]}`)";
    let items = v
        .as_array()
        .ok_or_else(|| format!("`schema:` is not a list; {USAGE}"))?;
    if items.is_empty() {
        return Err(format!("`schema:` lists no column; {USAGE}"));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| format!("column {} is not a mapping; {USAGE}", i + 1))?;
        let (name, ty) = if obj.len() == 1 && !obj.contains_key("type") {
            let (name, ty) = obj.iter().next().expect("one entry");
            let ty = ty
                .as_str()
                .ok_or_else(|| format!("column '{name}': the type is not a string"))?;
            (name.clone(), ty.to_string())
        } else {
            for k in obj.keys() {
                if !["name", "type", "from", "how"].contains(&k.as_str()) {
                    return Err(format!(
                        "column {}: unknown field '{k}' (name, type, from, how)",
                        i + 1
                    ));
                }
            }
            let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let name = text("name").ok_or_else(|| format!("column {}: no `name`", i + 1))?;
            let ty = text("type").ok_or_else(|| format!("column '{name}': no `type`"))?;
            (name, ty)
        };
        if name.is_empty() {
            return Err(format!("column {}: the name is empty", i + 1));
        }
        if fields.iter().any(|f| f.name() == &name) {
            return Err(format!("column '{name}' is declared twice"));
        }
        let dt = data_type(&ty).map_err(|m| format!("column '{name}': {m}"))?;
        fields.push(Field::new(name, dt, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The column lineage declared with `from:` (and `how:`) in a `schema:` already [`parse`]d; every
/// `from` asset must be in `upstreams`. The error is a sentence for E0250.
pub fn lineage(
    v: &serde_json::Value,
    upstreams: &[crate::key::AssetKey],
) -> Result<super::columns::ColumnLineage, String> {
    use super::columns::{ColumnSource, How, OutputColumn};
    let mut out = Vec::new();
    for item in v.as_array().into_iter().flatten() {
        let Some(obj) = item.as_object() else {
            continue;
        };
        let (Some(name), Some(from)) = (obj.get("name").and_then(|n| n.as_str()), obj.get("from"))
        else {
            if obj.contains_key("how") {
                return Err("`how:` goes with `from:`".into());
            }
            continue;
        };
        let how = match obj.get("how").map(|h| h.as_str()) {
            None => How::Transformed,
            Some(Some("identity")) => How::Identity,
            Some(Some("transformed")) => How::Transformed,
            Some(Some("aggregated")) => How::Aggregated,
            Some(Some("filter")) => How::Filter,
            Some(other) => {
                return Err(format!(
                    "column '{name}': how {} is not identity, transformed, aggregated or filter",
                    other.unwrap_or("(not a string)")
                ))
            }
        };
        let refs: Vec<&str> = match from {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
            _ => Vec::new(),
        };
        if refs.is_empty() {
            return Err(format!(
                "column '{name}': `from:` is a list of ASSET.COLUMN (e.g. [stg/orders.amount])"
            ));
        }
        let mut sources = Vec::new();
        for r in refs {
            let (asset, column) = r.split_once('.').ok_or_else(|| {
                format!("column '{name}': from '{r}' is not ASSET.COLUMN (e.g. stg/orders.amount)")
            })?;
            let key = crate::key::AssetKey::parse(asset)
                .map_err(|e| format!("column '{name}': from '{r}': {e}"))?;
            if !upstreams.contains(&key) {
                return Err(format!(
                    "column '{name}': from '{r}': '{key}' is not an upstream of this asset (add it to `deps`)"
                ));
            }
            if column.is_empty() {
                return Err(format!("column '{name}': from '{r}' names no column"));
            }
            sources.push(ColumnSource {
                asset: key,
                column: column.to_string(),
                how,
            });
        }
        // As derived lineage lists them: direct sources first, then filters, each by asset and column.
        sources.sort_by(|a, b| {
            (a.how == How::Filter, &a.asset, &a.column).cmp(&(
                b.how == How::Filter,
                &b.asset,
                &b.column,
            ))
        });
        out.push(OutputColumn {
            column: name.to_string(),
            sources,
        });
    }
    Ok(out)
}

/// A type name as Arrow's data type.
pub fn data_type(name: &str) -> Result<DataType, String> {
    let lower = name.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" | "tinyint" => DataType::Int8,
        "int16" | "smallint" => DataType::Int16,
        "int32" | "int" | "integer" => DataType::Int32,
        "int64" | "bigint" | "long" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" | "float" | "real" => DataType::Float32,
        "float64" | "double" => DataType::Float64,
        "string" | "text" | "utf8" | "varchar" => DataType::Utf8,
        "large_string" | "largeutf8" => DataType::LargeUtf8,
        "string_view" | "utf8view" => DataType::Utf8View,
        "binary" | "bytes" => DataType::Binary,
        "date" | "date32" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => {
            if let Some(args) = lower
                .strip_prefix("decimal(")
                .and_then(|r| r.strip_suffix(')'))
            {
                let (p, s) = args.split_once(',').unwrap_or((args, "0"));
                let p: u8 = p.trim().parse().map_err(|_| bad_decimal(name))?;
                let s: i8 = s.trim().parse().map_err(|_| bad_decimal(name))?;
                if p == 0 || p > 38 || s < 0 || s as u8 > p {
                    return Err(bad_decimal(name));
                }
                return Ok(DataType::Decimal128(p, s));
            }
            return DataType::from_str(name.trim()).map_err(|_| {
                format!("unknown type '{name}' (bool, int32, int64, float64, string, date, timestamp, timestamptz, decimal(P,S), or an Arrow type name)")
            });
        }
    })
}

fn bad_decimal(name: &str) -> String {
    format!("'{name}': write decimal(P,S) with 1 ≤ P ≤ 38 and 0 ≤ S ≤ P")
}

/// How `actual` differs from `declared`, naming the first column that does: the same column names
/// (order ignored) with the same types (string and binary encodings count as one). Nullability is not
/// compared (a `not_null` check tests the data). `None` when they agree.
pub fn mismatch(declared: &Schema, actual: &Schema) -> Option<String> {
    for f in declared.fields() {
        match actual.field_with_name(f.name()) {
            Err(_) => return Some(format!("column '{}' is declared but missing", f.name())),
            Ok(a) if !same_type(a.data_type(), f.data_type()) => {
                return Some(format!(
                    "column '{}' is {}, declared {}",
                    f.name(),
                    a.data_type(),
                    f.data_type()
                ))
            }
            Ok(_) => {}
        }
    }
    actual
        .fields()
        .iter()
        .find(|a| declared.field_with_name(a.name()).is_err())
        .map(|a| format!("column '{}' is not declared", a.name()))
}

/// Types that are the same data: the string and binary encodings (plain, large, view) count as one.
fn same_type(a: &DataType, b: &DataType) -> bool {
    use DataType::*;
    let norm = |t: &DataType| match t {
        LargeUtf8 | Utf8View => Utf8,
        LargeBinary | BinaryView => Binary,
        other => other.clone(),
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_parse_in_order() {
        let s = parse(&json!([{"id": "int64"}, {"name": "cur", "type": "string"}, {"at": "timestamptz"}, {"p": "decimal(10, 2)"}])).unwrap();
        let got: Vec<_> = s
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("id", DataType::Int64),
                ("cur", DataType::Utf8),
                (
                    "at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
                ),
                ("p", DataType::Decimal128(10, 2)),
            ]
        );
        assert_eq!(
            data_type("Timestamp(Nanosecond, None)").unwrap(),
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        );
    }

    #[test]
    fn bad_declarations_say_what_is_wrong() {
        for (v, says) in [
            (json!({"id": "int64"}), "not a list"),
            (json!([]), "no column"),
            (json!(["id"]), "not a mapping"),
            (json!([{"id": "int65"}]), "unknown type 'int65'"),
            (json!([{"id": "int64"}, {"id": "string"}]), "declared twice"),
            (
                json!([{"name": "x", "typ": "int64"}]),
                "unknown field 'typ'",
            ),
            (json!([{"name": "x", "size": 3}]), "unknown field 'size'"),
            (json!([{"type": "int64"}]), "no `name`"),
            (json!([{"p": "decimal(40,2)"}]), "decimal(P,S)"),
        ] {
            let e = parse(&v).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }

    #[test]
    fn lineage_is_declared_with_from_and_how() {
        use crate::key::AssetKey;
        use crate::project::columns::How;
        let ups = [AssetKey::parse("stg/orders").unwrap()];
        let v = json!([{"id": "int64"}, {"name": "total", "type": "float64", "from": ["stg/orders.amount", "stg/orders.fx"], "how": "aggregated"}, {"name": "k", "type": "string", "from": "stg/orders.k"}]);
        parse(&v).unwrap();
        let l = lineage(&v, &ups).unwrap();
        let got: Vec<_> = l
            .iter()
            .flat_map(|c| {
                c.sources.iter().map(move |s| {
                    (
                        c.column.as_str(),
                        s.asset.as_str(),
                        s.column.as_str(),
                        s.how,
                    )
                })
            })
            .collect();
        assert_eq!(
            got,
            [
                ("total", "stg/orders", "amount", How::Aggregated),
                ("total", "stg/orders", "fx", How::Aggregated),
                ("k", "stg/orders", "k", How::Transformed),
            ]
        );
        for (v, says) in [
            (
                json!([{"name": "a", "type": "int64", "from": ["raw/x.a"]}]),
                "not an upstream",
            ),
            (
                json!([{"name": "a", "type": "int64", "from": ["stg/orders"]}]),
                "not ASSET.COLUMN",
            ),
            (
                json!([{"name": "a", "type": "int64", "from": ["stg/orders.a"], "how": "copied"}]),
                "how copied",
            ),
            (
                json!([{"name": "a", "type": "int64", "from": []}]),
                "a list of ASSET.COLUMN",
            ),
        ] {
            let e = lineage(&v, &ups).unwrap_err();
            assert!(e.contains(says), "{v}: {e}");
        }
    }

    #[test]
    fn mismatch_names_the_column() {
        let d = parse(&json!([{"a": "int64"}, {"b": "string"}])).unwrap();
        let ok = Schema::new(vec![
            Field::new("b", DataType::Utf8View, true),
            Field::new("a", DataType::Int64, false),
        ]);
        assert_eq!(mismatch(&d, &ok), None);
        let wrong = Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        assert_eq!(
            mismatch(&d, &wrong).unwrap(),
            "column 'a' is Int32, declared Int64"
        );
        let extra = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Utf8, true),
        ]);
        assert_eq!(mismatch(&d, &extra).unwrap(), "column 'c' is not declared");
        let missing = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
        assert_eq!(
            mismatch(&d, &missing).unwrap(),
            "column 'b' is declared but missing"
        );
    }
}
