//! Scorers: each turns a case's output (and its expected answer) into a score in `[0, 1]` and a pass.
//! `exact_match`, `regex`, `json_schema` (a subset of JSON Schema: `type`, `properties`, `required`,
//! `additionalProperties: false`, `items`, `enum`, `const`, `minimum`/`maximum`,
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `pattern`), `numeric` (the first number in the
//! output within a tolerance of the expected one), `similarity` (normalized Levenshtein), `judge` (a
//! model's grade) and `command` (a program's score). The LLM judge and the command are asynchronous
//! and live with the subject ([`crate::subject`]).

use serde_json::Value;

/// A scorer as configured.
#[derive(Debug, Clone)]
pub enum Scorer {
    /// The output equals the expected answer (trimmed; optionally ignoring case).
    ExactMatch {
        /// Compare ignoring case.
        ignore_case: bool,
    },
    /// The output matches the pattern.
    Regex(regex::Regex),
    /// The output is JSON valid under the schema.
    JsonSchema(Value),
    /// The first number in the output is within `tolerance` of the expected number (relative to
    /// it when `relative`).
    Numeric {
        /// Allowed difference.
        tolerance: f64,
        /// `tolerance` is a fraction of the expected value.
        relative: bool,
    },
    /// Normalized Levenshtein similarity to the expected answer; passes at `min`.
    Similarity {
        /// The similarity that passes.
        min: f64,
    },
    /// A model grades the output: the first number of its answer over `scale`; passes at `min`.
    Judge {
        /// The grading model.
        model: crate::subject::Model,
        /// Its prompt (`{{ input }}`, `{{ output }}`, `{{ expected }}` and dataset columns).
        prompt: String,
        /// The grade that means a perfect answer.
        scale: f64,
        /// The score that passes.
        min: f64,
    },
    /// A program reads `{"input", "output", "expected", "case"}` on stdin and prints a score in
    /// `[0, 1]`; passes at `min`.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// The score that passes.
        min: f64,
    },
}

/// A named scorer (its column is `score_{name}`).
#[derive(Debug, Clone)]
pub struct NamedScorer {
    /// Name.
    pub name: String,
    /// What it does.
    pub scorer: Scorer,
}

/// A scorer's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// In `[0, 1]`.
    pub score: f64,
    /// Whether it passes the scorer's bar.
    pub passed: bool,
}

impl Score {
    fn binary(ok: bool) -> Self {
        Score {
            score: if ok { 1.0 } else { 0.0 },
            passed: ok,
        }
    }

    /// A graded score that passes at `min`.
    pub fn graded(score: f64, min: f64) -> Self {
        let score = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Score {
            score,
            passed: score >= min,
        }
    }
}

/// The first number in `text`.
pub fn first_number(text: &str) -> Option<f64> {
    let re = regex::Regex::new(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?").ok()?;
    re.find(text).and_then(|m| m.as_str().parse().ok())
}

/// Scores `output` against `expected` with a synchronous scorer; `None` for `judge` and `command`.
pub fn score(scorer: &Scorer, output: &str, expected: Option<&str>) -> Option<Score> {
    let expected_text = expected.unwrap_or_default();
    Some(match scorer {
        Scorer::ExactMatch { ignore_case } => {
            let (a, b) = (output.trim(), expected_text.trim());
            Score::binary(if *ignore_case {
                a.to_lowercase() == b.to_lowercase()
            } else {
                a == b
            })
        }
        Scorer::Regex(re) => Score::binary(re.is_match(output)),
        Scorer::JsonSchema(schema) => Score::binary(
            serde_json::from_str::<Value>(output.trim())
                .map(|v| valid(&v, schema))
                .unwrap_or(false),
        ),
        Scorer::Numeric {
            tolerance,
            relative,
        } => {
            let ok = match (
                first_number(output),
                expected_text.trim().parse::<f64>().ok(),
            ) {
                (Some(got), Some(want)) => {
                    let allowed = if *relative {
                        tolerance * want.abs()
                    } else {
                        *tolerance
                    };
                    (got - want).abs() <= allowed + 1e-12
                }
                _ => false,
            };
            Score::binary(ok)
        }
        Scorer::Similarity { min } => Score::graded(
            strsim::normalized_levenshtein(output.trim(), expected_text.trim()),
            *min,
        ),
        Scorer::Judge { .. } | Scorer::Command { .. } => return None,
    })
}

/// Whether `v` is valid under `schema` (the subset in the module's documentation).
pub fn valid(v: &Value, schema: &Value) -> bool {
    let Some(s) = schema.as_object() else {
        return schema.as_bool().unwrap_or(true);
    };
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let is = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return false;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return false;
        }
    }
    if s.get("const").is_some_and(|c| c != v) {
        return false;
    }
    if let Some(x) = v.as_f64() {
        if s.get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| x < m)
            || s.get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| x > m)
        {
            return false;
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || s.get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            return false;
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            if !regex::Regex::new(p).is_ok_and(|re| re.is_match(text)) {
                return false;
            }
        }
    }
    if let Some(items) = v.as_array() {
        let len = items.len() as u64;
        if s.get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            return false;
        }
        if let Some(item) = s.get("items") {
            if !items.iter().all(|i| valid(i, item)) {
                return false;
            }
        }
    }
    if let Some(o) = v.as_object() {
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            if !req
                .iter()
                .filter_map(Value::as_str)
                .all(|k| o.contains_key(k))
            {
                return false;
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(props) = props {
            for (k, sub) in props {
                if o.get(k).is_some_and(|x| !valid(x, sub)) {
                    return false;
                }
            }
        }
        if s.get("additionalProperties") == Some(&Value::Bool(false))
            && o.keys().any(|k| !props.is_some_and(|p| p.contains_key(k)))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_synchronous_scorer_scores() {
        let exact = Scorer::ExactMatch { ignore_case: true };
        assert_eq!(score(&exact, " Paris\n", Some("paris")).unwrap().score, 1.0);
        assert!(!score(&exact, "Lyon", Some("paris")).unwrap().passed);
        let re = Scorer::Regex(regex::Regex::new("^[A-Z]{3}$").unwrap());
        assert!(score(&re, "ABC", None).unwrap().passed);
        assert!(!score(&re, "ABCD", None).unwrap().passed);
        let num = Scorer::Numeric {
            tolerance: 0.01,
            relative: false,
        };
        assert!(
            score(&num, "The answer is 3.14159.", Some("3.14"))
                .unwrap()
                .passed
        );
        assert!(!score(&num, "about 3.2", Some("3.14")).unwrap().passed);
        assert!(!score(&num, "no idea", Some("3.14")).unwrap().passed);
        let sim = Scorer::Similarity { min: 0.8 };
        let s = score(&sim, "kitten", Some("sitting")).unwrap();
        assert!(s.score > 0.5 && s.score < 0.6 && !s.passed, "{s:?}");
    }

    #[test]
    fn json_schema_subset() {
        let schema = json!({
            "type": "object",
            "required": ["label", "confidence"],
            "additionalProperties": false,
            "properties": {
                "label": {"type": "string", "enum": ["spam", "ham"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 2}
            }
        });
        let ok = Scorer::JsonSchema(schema);
        for (text, want) in [
            (r#"{"label": "spam", "confidence": 0.9}"#, true),
            (
                r#"{"label": "spam", "confidence": 0.9, "tags": ["a", "b"]}"#,
                true,
            ),
            (r#"{"label": "eggs", "confidence": 0.9}"#, false),
            (r#"{"label": "spam", "confidence": 1.5}"#, false),
            (r#"{"label": "spam"}"#, false),
            (r#"{"label": "spam", "confidence": 0.5, "extra": 1}"#, false),
            (
                r#"{"label": "spam", "confidence": 0.5, "tags": ["A"]}"#,
                false,
            ),
            ("not json", false),
        ] {
            assert_eq!(score(&ok, text, None).unwrap().passed, want, "{text}");
        }
    }
}
