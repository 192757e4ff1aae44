//! Arguments checked before anything opens: `--tag KEY=VALUE` (run budgets included) and the
//! contract `assets schema` names.

use spine_engine::EngineError;

/// `assets schema NAME`: the contract's JSON Schema, as checked in under `schemas/json/`.
pub(super) fn schema(name: &str) -> anyhow::Result<u8> {
    let Some(s) = spine_schemas::json::by_name(name) else {
        let names: Vec<&str> = spine_schemas::json::all().iter().map(|(n, _)| *n).collect();
        let e = spine_engine::DefinitionError::new("E0113", format!("no schema '{name}'"))
            .hint(format!("one of: {}", names.join(", ")));
        return Err(EngineError::from(e).into());
    };
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}

/// `--tag KEY=VALUE` flags as a map; E0113 for one without `=` or with an empty key.
pub(super) fn parse_tags(
    tags: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                let (k, v) = (k.trim(), v.trim());
                let number = match k {
                    "budget_tokens" => v.parse::<u64>().is_ok(),
                    "budget_cost" => v.parse::<f64>().is_ok_and(|c| c.is_finite() && c >= 0.0),
                    _ => true,
                };
                if !number {
                    let e = spine_engine::DefinitionError::new(
                        "E0113",
                        format!("--tag {k}={v}: a run budget is a number of at least 0"),
                    )
                    .hint("e.g. --tag budget_tokens=200000 --tag budget_cost=2.5");
                    return Err(EngineError::from(e).into());
                }
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(EngineError::from(
                    spine_engine::DefinitionError::new(
                        "E0113",
                        format!("--tag '{t}' is not KEY=VALUE"),
                    )
                    .hint("e.g. --tag team=growth (repeat for more)"),
                )
                .into())
            }
        }
    }
    Ok(out)
}
