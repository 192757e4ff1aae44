//! The `eval` kind's definition:
//!
//! ```yaml
//! - key: evals/arith
//!   kind: eval
//!   dataset: datasets/arith         # one row per case
//!   case_id: id                     # defaults: id, input, expected
//!   input: question
//!   expected: answer
//!   slices: [category]              # dataset columns copied onto each row (per-slice gates)
//!   samples: 3                      # answers per case (default 1)
//!   concurrency: 4                  # cases at once (default 4)
//!   subject:
//!     model: {base_url: "${env:OPENAI_BASE_URL}", api_key_env: OPENAI_API_KEY, name: gpt-4o-mini}
//!     prompt: "What is {{ question }}? Answer with the number only."
//!     # or: command: [python3, bot.py]   (the case as JSON on stdin, the answer on stdout)
//!   scorers: [exact_match, {numeric: {tolerance: 0.01}}]
//!   pricing: {prompt_per_1k: 0.00015, completion_per_1k: 0.0006}
//!   gate: {pass_rate: 0.9, regression: {margin: 0.05}}     # see crate::gate
//! ```

use crate::gate::GateConfig;
use crate::scorers::{NamedScorer, Scorer};
use crate::subject::Model;
use serde_json::Value;
use spine_engine::error::DefinitionError;
use spine_engine::kinds::KindDefinition;
use spine_engine::AssetKey;
use std::path::PathBuf;

pub(crate) const CODE: &str = "E0270";

/// What answers each case.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A prompt to a model.
    Model {
        /// The model.
        model: Model,
        /// The prompt template (`{{ column }}` of the dataset).
        prompt: String,
    },
    /// A program: the case as JSON on stdin, the answer on stdout.
    Command(Vec<String>),
}

/// Token prices.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Per 1000 prompt tokens.
    #[serde(default)]
    pub prompt_per_1k: f64,
    /// Per 1000 completion tokens.
    #[serde(default)]
    pub completion_per_1k: f64,
}

/// A validated `eval` definition.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The cases' asset.
    pub dataset: AssetKey,
    /// Case id column.
    pub case_id: String,
    /// Input column.
    pub input: String,
    /// Expected answer column (may be absent from the dataset).
    pub expected: String,
    /// Dataset columns copied onto each row.
    pub slices: Vec<String>,
    /// Answers per case.
    pub samples: u32,
    /// Cases at once.
    pub concurrency: usize,
    /// What answers.
    pub subject: Subject,
    /// Its version: a hash of everything that defines it (model, prompt, command).
    pub subject_version: String,
    /// How answers are scored.
    pub scorers: Vec<NamedScorer>,
    /// Token prices.
    pub pricing: Pricing,
    /// The gate, if any.
    pub gate: Option<GateConfig>,
    /// The definition's folder (commands run there).
    pub dir: PathBuf,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SubjectFields {
    model: Option<Model>,
    prompt: Option<String>,
    command: Option<Vec<String>>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    dataset: String,
    case_id: Option<String>,
    input: Option<String>,
    expected: Option<String>,
    #[serde(default)]
    slices: Vec<String>,
    samples: Option<u32>,
    concurrency: Option<usize>,
    subject: SubjectFields,
    scorers: Vec<Value>,
    pricing: Option<Pricing>,
    gate: Option<Value>,
}

fn scorer(def: &KindDefinition<'_>, v: &Value) -> Result<NamedScorer, DefinitionError> {
    let bad = |m: String| {
        def.error(CODE, format!("scorers: {m}")).hint(
            "a scorer is exact_match, {regex: P}, {json_schema: S}, {numeric: {tolerance}}, \
             {similarity: {min}}, {judge: {model, prompt}} or {command: [PROGRAM, ARG…]}, with an optional name",
        )
    };
    let (kind, args, name) = match v {
        Value::String(s) => (s.clone(), Value::Null, None),
        Value::Object(o) => {
            let name = o.get("name").and_then(Value::as_str).map(str::to_string);
            let mut keys = o.iter().filter(|(k, _)| *k != "name");
            match (keys.next(), keys.next()) {
                (Some((k, a)), None) => (k.clone(), a.clone(), name),
                _ => return Err(bad(format!("{v} names no single scorer"))),
            }
        }
        _ => return Err(bad(format!("{v} is not a scorer"))),
    };
    let num = |field: &str, default: f64| -> Result<f64, DefinitionError> {
        match args.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_f64()
                .ok_or_else(|| bad(format!("{kind}: `{field}` is not a number"))),
        }
    };
    let scorer = match kind.as_str() {
        "exact_match" => Scorer::ExactMatch {
            ignore_case: args
                .get("ignore_case")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "regex" => {
            let p = args
                .as_str()
                .ok_or_else(|| bad("regex: write {regex: PATTERN}".into()))?;
            Scorer::Regex(
                regex::Regex::new(p).map_err(|e| bad(format!("regex '{p}' is not valid: {e}")))?,
            )
        }
        "json_schema" => match &args {
            Value::Object(_) | Value::Bool(_) => Scorer::JsonSchema(args.clone()),
            _ => {
                return Err(bad(
                    "json_schema: write {json_schema: {type: object, …}}".into()
                ))
            }
        },
        "numeric" => Scorer::Numeric {
            tolerance: num("tolerance", 0.0)?,
            relative: args
                .get("relative")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        "similarity" => Scorer::Similarity {
            min: num("min", 0.8)?,
        },
        "judge" => {
            let model: Model =
                serde_json::from_value(args.get("model").cloned().unwrap_or(Value::Null))
                    .map_err(|e| bad(format!("judge: `model`: {e}")))?;
            let prompt = args.get("prompt").and_then(Value::as_str).ok_or_else(|| {
                bad("judge: needs a `prompt` ({{ input }}, {{ output }}, {{ expected }})".into())
            })?;
            Scorer::Judge {
                model,
                prompt: prompt.to_string(),
                scale: num("scale", 10.0)?,
                min: num("min", 0.5)?,
            }
        }
        "command" => {
            let (argv, min) = match &args {
                Value::Array(_) => (args.clone(), 0.5),
                _ => (
                    args.get("argv").cloned().unwrap_or(Value::Null),
                    num("min", 0.5)?,
                ),
            };
            let argv: Vec<String> = serde_json::from_value(argv)
                .ok()
                .filter(|a: &Vec<String>| !a.is_empty())
                .ok_or_else(|| bad("command: write {command: [PROGRAM, ARG…]}".into()))?;
            Scorer::Command { argv, min }
        }
        other => return Err(bad(format!("unknown scorer '{other}'"))),
    };
    Ok(NamedScorer {
        name: name.unwrap_or(kind),
        scorer,
    })
}

/// Parses and validates a definition; the code version covers all of it but secrets (which are
/// never in it: `${env:…}` and `api_key_env` stay names).
pub(crate) fn parse(def: &KindDefinition<'_>) -> Result<(EvalConfig, Vec<u8>), DefinitionError> {
    let fields: Fields = def.parse()?;
    let dataset = AssetKey::parse(&fields.dataset).map_err(|e| {
        def.error(
            CODE,
            format!("dataset: '{}' is not an asset key: {e}", fields.dataset),
        )
        .hint("name the asset holding the cases, e.g. dataset: datasets/support")
    })?;
    let subject = match (&fields.subject.model, &fields.subject.prompt, &fields.subject.command) {
        (Some(m), Some(p), None) => Subject::Model {
            model: m.clone(),
            prompt: p.clone(),
        },
        (None, None, Some(c)) if !c.is_empty() => Subject::Command(c.clone()),
        _ => {
            return Err(def
                .error(CODE, "subject: give a `model` and a `prompt`, or a `command`")
                .hint("e.g. subject: {model: {base_url: \"${env:OPENAI_BASE_URL}\", name: gpt-4o-mini}, prompt: \"…{{ input }}…\"}"))
        }
    };
    if fields.scorers.is_empty() {
        return Err(def
            .error(CODE, "an eval needs at least one scorer")
            .hint("e.g. scorers: [exact_match]"));
    }
    let mut scorers: Vec<NamedScorer> = Vec::new();
    for v in &fields.scorers {
        let s = scorer(def, v)?;
        if scorers.iter().any(|x| x.name == s.name) {
            return Err(def
                .error(CODE, format!("scorers: two scorers named '{}'", s.name))
                .hint("give one a `name:`"));
        }
        scorers.push(s);
    }
    let samples = fields.samples.unwrap_or(1);
    if samples == 0 || samples > 1000 {
        return Err(def.error(CODE, format!("samples: {samples} is not from 1 to 1000")));
    }
    let gate = match &fields.gate {
        Some(g) => Some(GateConfig::parse(g).map_err(|m| {
            def.error(CODE, format!("gate: {m}"))
                .hint("e.g. gate: {pass_rate: 0.9, regression: {margin: 0.05}}")
        })?),
        None => None,
    };
    if let Some(col) = gate
        .as_ref()
        .and_then(|g| g.slices.as_ref())
        .map(|s| &s.column)
    {
        if !fields.slices.contains(col) {
            return Err(def
                .error(
                    CODE,
                    format!("gate: slices by '{col}', which is not among `slices:`"),
                )
                .hint(format!("add it: slices: [{col}]")));
        }
    }
    let subject_version =
        spine_engine::hash::short_hash(&serde_json::to_vec(&fields.subject).unwrap_or_default());
    let code = serde_json::to_vec(&fields).unwrap_or_default();
    Ok((
        EvalConfig {
            dataset,
            case_id: fields.case_id.clone().unwrap_or_else(|| "id".into()),
            input: fields.input.clone().unwrap_or_else(|| "input".into()),
            expected: fields.expected.clone().unwrap_or_else(|| "expected".into()),
            slices: fields.slices.clone(),
            samples,
            concurrency: fields.concurrency.unwrap_or(4).clamp(1, 256),
            subject,
            subject_version,
            scorers,
            pricing: fields.pricing.unwrap_or_default(),
            gate,
            dir: def.dir.to_path_buf(),
        },
        code,
    ))
}
