//! `--target NAME` and `--vars '{key: value}'`: applied to the process environment before anything
//! starts (no other thread exists yet), as `SPINE_TARGET` and `SPINE_VAR_<KEY>`, so the project
//! loader, `${var:…}` everywhere and the programs a command asset starts all see the same values.

use spine_engine::DefinitionError;

/// Sets `SPINE_TARGET` from `target` and a `SPINE_VAR_<KEY>` per entry of `vars` (a YAML or JSON
/// mapping of names to scalars). E0112 for vars that are not such a mapping.
pub fn apply(target: Option<&str>, vars: Option<&str>) -> anyhow::Result<()> {
    if let Some(t) = target {
        std::env::set_var("SPINE_TARGET", t);
    }
    let Some(text) = vars else {
        return Ok(());
    };
    let bad = |why: String| {
        DefinitionError::new("E0112", format!("--vars: {why}"))
            .hint("give a mapping of names to values, e.g. --vars '{orders: 1000, region: emea}'")
    };
    let parsed: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| bad(format!("not YAML or JSON: {e}")))?;
    let serde_yaml::Value::Mapping(map) = parsed else {
        return Err(bad(format!("'{text}' is not a mapping")).into());
    };
    for (k, v) in map {
        let name = match k {
            serde_yaml::Value::String(s) => s,
            other => return Err(bad(format!("the name {other:?} is not text")).into()),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad(format!(
                "'{name}' is not a variable name (letters, digits and '_')"
            ))
            .into());
        }
        let value = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            other => {
                return Err(bad(format!(
                    "the value of '{name}' is not a string, number or boolean: {other:?}"
                ))
                .into())
            }
        };
        std::env::set_var(format!("SPINE_VAR_{}", name.to_ascii_uppercase()), value);
    }
    Ok(())
}
