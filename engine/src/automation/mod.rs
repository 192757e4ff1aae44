//! Automation conditions: when the daemon materializes an asset (or a partition of it) by itself, as
//! Dagster's `AutomationCondition`. Declared per asset:
//!
//! ```yaml
//! automation: eager                              # not fresh (an upstream is newer, or its code changed)
//! automation: on_missing                         # never materialized
//! automation: {on_cron: "0 * * * *"}             # a cron tick passed since its latest materialization
//! automation: {on_cron: {cron: "0 2 * * *", timezone: Europe/Berlin}}
//! automation: {or: [on_missing, eager]}          # also `and: [...]`, `not: …`
//! ```
//!
//! Each condition is decided for one step key from the store's state at the clock's time, with no
//! state of its own, so `assets automation explain` shows exactly what the daemon decides. None of
//! them requests a step that a queued or running run already plans, or (`eager`, `on_missing`) whose
//! latest attempt failed after the upstream data it would read; `on_cron` tries a failed step again
//! at its next tick.

use crate::schedule::Cron;

/// A parsed condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Never materialized.
    OnMissing,
    /// Not fresh, with its upstreams materialized.
    Eager,
    /// A tick of the cron passed since the latest materialization.
    OnCron {
        /// As written.
        text: String,
        /// Parsed.
        cron: Box<Cron>,
    },
    /// All of them.
    And(Vec<Condition>),
    /// Any of them.
    Or(Vec<Condition>),
    /// Not it.
    Not(Box<Condition>),
}

impl Condition {
    /// Parses an `automation:` value; the error says what to write (E0211).
    pub fn parse(v: &serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        let hint = "write `eager`, `on_missing`, `{on_cron: \"0 * * * *\"}`, or combine them with `{and: [...]}`, `{or: [...]}`, `{not: ...}`";
        match v {
            Value::String(s) => match s.as_str() {
                "eager" => Ok(Condition::Eager),
                "on_missing" => Ok(Condition::OnMissing),
                other => Err(format!("unknown condition '{other}': {hint}")),
            },
            Value::Object(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                let list = |v: &Value| -> Result<Vec<Condition>, String> {
                    match v {
                        Value::Array(a) if !a.is_empty() => {
                            a.iter().map(Condition::parse).collect()
                        }
                        _ => Err(format!("`{k}` takes a non-empty list of conditions")),
                    }
                };
                match k.as_str() {
                    "and" => Ok(Condition::And(list(v)?)),
                    "or" => Ok(Condition::Or(list(v)?)),
                    "not" => Ok(Condition::Not(Box::new(Condition::parse(v)?))),
                    "on_cron" => {
                        let (text, tz) = match v {
                            Value::String(c) => (c.clone(), None),
                            Value::Object(o) => {
                                if let Some(extra) =
                                    o.keys().find(|k| *k != "cron" && *k != "timezone")
                                {
                                    return Err(format!(
                                        "unknown field `{extra}` in on_cron (cron, timezone)"
                                    ));
                                }
                                let c = o
                                    .get("cron")
                                    .and_then(Value::as_str)
                                    .ok_or("on_cron needs `cron: \"…\"`".to_string())?;
                                let tz = o.get("timezone").and_then(Value::as_str);
                                (c.to_string(), tz.map(str::to_string))
                            }
                            _ => {
                                return Err("on_cron takes a cron string or {cron, timezone}".into())
                            }
                        };
                        let cron = Cron::parse(&text, tz.as_deref())?;
                        Ok(Condition::OnCron {
                            text,
                            cron: Box::new(cron),
                        })
                    }
                    other => Err(format!("unknown condition '{other}': {hint}")),
                }
            }
            _ => Err(format!("not a condition: {hint}")),
        }
    }

    /// How the condition reads.
    pub fn label(&self) -> String {
        match self {
            Condition::OnMissing => "on_missing".into(),
            Condition::Eager => "eager".into(),
            Condition::OnCron { text, .. } => format!("on_cron \"{text}\""),
            Condition::And(_) => "and".into(),
            Condition::Or(_) => "or".into(),
            Condition::Not(_) => "not".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Condition, String> {
        let v: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
        Condition::parse(&v)
    }

    #[test]
    fn conditions_parse_and_bad_ones_say_what_to_write() {
        assert!(matches!(parse("eager"), Ok(Condition::Eager)));
        assert!(matches!(parse("{or: [on_missing, eager]}"), Ok(Condition::Or(v)) if v.len() == 2));
        assert!(matches!(
            parse(
                "{and: [eager, {not: {on_cron: {cron: \"0 2 * * *\", timezone: Europe/Berlin}}}]}"
            ),
            Ok(Condition::And(_))
        ));
        for (yaml, says) in [
            ("eagre", "unknown condition 'eagre'"),
            ("{or: []}", "non-empty list"),
            ("{on_cron: \"0 2 *\"}", "has 3 fields"),
            (
                "{on_cron: {cron: \"0 2 * * *\", timezone: Nowhere}}",
                "unknown timezone",
            ),
            (
                "{on_cron: {cron: \"0 2 * * *\", tz: UTC}}",
                "unknown field `tz`",
            ),
            ("{eager: true, or: []}", "not a condition"),
            ("3", "not a condition"),
        ] {
            let e = parse(yaml).expect_err(yaml);
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }
}
