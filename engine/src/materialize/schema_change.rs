//! Schema changes of an asset's table, judged against its `on_schema_change` policy before anything is
//! committed. The old schema is the one recorded with the asset's latest materialization (`[{name, type,
//! nullable}]`, the same shape `schema_json` writes), so no table is opened for it.

use spine_schemas::definitions::OnSchemaChange;

/// One column as recorded.
struct Column<'a> {
    name: &'a str,
    ty: &'a str,
}

fn columns(schema: &serde_json::Value) -> Vec<Column<'_>> {
    schema
        .as_array()
        .map(|cols| {
            cols.iter()
                .filter_map(|c| {
                    Some(Column {
                        name: c.get("name")?.as_str()?,
                        ty: c.get("type")?.as_str()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether values of type `from` fit losslessly in `to`.
fn widens(from: &str, to: &str) -> bool {
    const INTS: [&str; 4] = ["Int8", "Int16", "Int32", "Int64"];
    const UINTS: [&str; 4] = ["UInt8", "UInt16", "UInt32", "UInt64"];
    let rank = |list: &[&str], t: &str| list.iter().position(|x| *x == t);
    match (from, to) {
        _ if rank(&INTS, from)
            .zip(rank(&INTS, to))
            .is_some_and(|(a, b)| a < b) =>
        {
            true
        }
        _ if rank(&UINTS, from)
            .zip(rank(&UINTS, to))
            .is_some_and(|(a, b)| a < b) =>
        {
            true
        }
        ("Float16" | "Float32", "Float64") | ("Float16", "Float32") => true,
        ("Int8" | "Int16" | "Int32" | "UInt8" | "UInt16" | "UInt32", "Float64") => true,
        ("Utf8", "LargeUtf8" | "Utf8View") | ("Binary", "LargeBinary") => true,
        _ => false,
    }
}

/// What in `new` breaks `old` under `policy`, as one sentence per column; empty when it is allowed.
pub(super) fn conflicts(
    old: &serde_json::Value,
    new: &serde_json::Value,
    policy: OnSchemaChange,
) -> Vec<String> {
    if policy == OnSchemaChange::Overwrite {
        return Vec::new();
    }
    let new_cols = columns(new);
    let mut out = Vec::new();
    for o in columns(old) {
        match new_cols.iter().find(|n| n.name == o.name) {
            None => out.push(format!("column '{}' ({}) was dropped", o.name, o.ty)),
            Some(n) if n.ty == o.ty => {}
            Some(n) if policy == OnSchemaChange::Evolve && widens(o.ty, n.ty) => {}
            Some(n) => out.push(format!(
                "column '{}' changed type from {} to {}",
                o.name, o.ty, n.ty
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(cols: &[(&str, &str)]) -> serde_json::Value {
        json!(cols
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t, "nullable": true}))
            .collect::<Vec<_>>())
    }

    #[test]
    fn each_policy_allows_what_it_says() {
        let old = schema(&[("id", "Int32"), ("amount", "Float64"), ("note", "Utf8")]);
        let added = schema(&[
            ("id", "Int32"),
            ("amount", "Float64"),
            ("note", "Utf8"),
            ("extra", "Int64"),
        ]);
        let widened = schema(&[
            ("id", "Int64"),
            ("amount", "Float64"),
            ("note", "LargeUtf8"),
        ]);
        let changed = schema(&[("id", "Int32"), ("amount", "Utf8"), ("note", "Utf8")]);
        let dropped = schema(&[("id", "Int32"), ("amount", "Float64")]);
        let narrowed = schema(&[("id", "Int8"), ("amount", "Float64"), ("note", "Utf8")]);
        use OnSchemaChange::*;
        assert!(conflicts(&old, &old, Fail).is_empty());
        assert!(
            conflicts(&old, &added, Fail).is_empty(),
            "added columns are fine"
        );
        assert_eq!(
            conflicts(&old, &widened, Fail),
            [
                "column 'id' changed type from Int32 to Int64",
                "column 'note' changed type from Utf8 to LargeUtf8"
            ]
        );
        assert!(conflicts(&old, &widened, Evolve).is_empty());
        assert_eq!(
            conflicts(&old, &changed, Evolve),
            ["column 'amount' changed type from Float64 to Utf8"]
        );
        assert_eq!(
            conflicts(&old, &dropped, Evolve),
            ["column 'note' (Utf8) was dropped"]
        );
        assert_eq!(conflicts(&old, &narrowed, Evolve).len(), 1);
        for new in [&added, &widened, &changed, &dropped, &narrowed] {
            assert!(conflicts(&old, new, Overwrite).is_empty());
        }
    }
}
