//! The `eval` kind ([`crate::config`] has its definition): runs the subject on every case of the
//! dataset asset (each `samples` times), scores each answer, and writes one row per case and sample —
//! the eval asset's table:
//!
//! `case_id, sample, subject_version, output, error, score, passed, score_{scorer}…, latency_ms,
//! prompt_tokens, completion_tokens, cost`, then the `slices` columns of the case.
//!
//! `score` is the mean of the scorers' scores; `passed`, whether every scorer passed. Its upstream
//! is the dataset; its code version covers the subject (model name, prompt, command), the scorers,
//! samples and pricing. A gate ([`crate::gate`]) audits each new version before it is published.

use crate::config::{parse, EvalConfig, Subject, CODE};
use crate::scorers::{first_number, score, Score, Scorer};
use crate::subject::{command, complete, render, Answer, Unavailable};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use serde_json::{Map, Value};
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::{
    AssetKind, Audits, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput, UpstreamSchemas,
};
use spine_engine::project::{AssetBody, AssetSpec};
use spine_jobs::cases::text;
use std::sync::Arc;

/// The `eval` kind.
pub struct EvalKind;

/// One scored answer.
struct Scored {
    case: usize,
    sample: u32,
    answer: Answer,
    scores: Vec<Score>,
}

async fn answer(
    c: &EvalConfig,
    client: &reqwest::Client,
    case: &Map<String, Value>,
) -> Result<Answer, Unavailable> {
    match &c.subject {
        Subject::Model { model, prompt } => complete(model, client, &render(prompt, case)).await,
        Subject::Command(argv) => {
            let input = Value::Object(case.clone()).to_string();
            Ok(command(argv, &c.dir, &input).await)
        }
    }
}

async fn scores(
    c: &EvalConfig,
    client: &reqwest::Client,
    case: &Map<String, Value>,
    answer: &Answer,
) -> Result<Vec<Score>, Unavailable> {
    let expected = text(case.get(&c.expected));
    let mut out = Vec::new();
    for s in &c.scorers {
        if answer.error.is_some() {
            out.push(Score::graded(0.0, 1.0));
            continue;
        }
        if let Some(x) = score(&s.scorer, &answer.output, expected.as_deref()) {
            out.push(x);
            continue;
        }
        let mut fields = case.clone();
        fields.insert("output".into(), Value::String(answer.output.clone()));
        fields.insert(
            "input".into(),
            case.get(&c.input).cloned().unwrap_or(Value::Null),
        );
        fields.insert(
            "expected".into(),
            expected.clone().map(Value::String).unwrap_or(Value::Null),
        );
        out.push(match &s.scorer {
            Scorer::Judge {
                model,
                prompt,
                scale,
                min,
            } => {
                let verdict = complete(model, client, &render(prompt, &fields)).await?;
                let grade = first_number(&verdict.output).unwrap_or(0.0);
                Score::graded(grade / scale.max(f64::MIN_POSITIVE), *min)
            }
            Scorer::Command { argv, min } => {
                let out = command(argv, &c.dir, &Value::Object(fields).to_string()).await;
                let v = out
                    .error
                    .is_none()
                    .then(|| first_number(&out.output))
                    .flatten();
                Score::graded(v.unwrap_or(0.0), *min)
            }
            _ => Score::graded(0.0, 1.0),
        });
    }
    Ok(out)
}

/// The eval table's schema: fixed columns, a score per scorer, the slices.
pub fn schema(c: &EvalConfig) -> Schema {
    let mut fields = vec![
        Field::new("case_id", DataType::Utf8, false),
        Field::new("sample", DataType::Int64, false),
        Field::new("subject_version", DataType::Utf8, false),
        Field::new("output", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("score", DataType::Float64, false),
        Field::new("passed", DataType::Boolean, false),
    ];
    for s in &c.scorers {
        fields.push(Field::new(
            format!("score_{}", s.name),
            DataType::Float64,
            false,
        ));
    }
    for f in ["latency_ms", "prompt_tokens", "completion_tokens"] {
        fields.push(Field::new(f, DataType::Int64, false));
    }
    fields.push(Field::new("cost", DataType::Float64, false));
    for s in &c.slices {
        fields.push(Field::new(s.clone(), DataType::Utf8, true));
    }
    Schema::new(fields)
}

fn batch(
    c: &EvalConfig,
    cases: &[Map<String, Value>],
    rows: &[Scored],
) -> Result<RecordBatch, StepError> {
    let id = |r: &Scored| text(cases[r.case].get(&c.case_id)).unwrap_or_default();
    let mean =
        |r: &Scored| r.scores.iter().map(|s| s.score).sum::<f64>() / r.scores.len().max(1) as f64;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(id))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.sample)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|_| c.subject_version.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.answer.output.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.answer.error.as_deref()),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(mean))),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|r| Some(r.scores.iter().all(|s| s.passed))),
        )),
    ];
    for i in 0..c.scorers.len() {
        columns.push(Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.scores[i].score),
        )));
    }
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.answer.latency_ms),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.answer.prompt_tokens),
    )));
    columns.push(Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r.answer.completion_tokens),
    )));
    columns.push(Arc::new(Float64Array::from_iter_values(rows.iter().map(
        |r| {
            r.answer.prompt_tokens as f64 / 1000.0 * c.pricing.prompt_per_1k
                + r.answer.completion_tokens as f64 / 1000.0 * c.pricing.completion_per_1k
        },
    ))));
    for s in &c.slices {
        columns.push(Arc::new(StringArray::from_iter(
            rows.iter().map(|r| text(cases[r.case].get(s))),
        )));
    }
    RecordBatch::try_new(Arc::new(schema(c)), columns)
        .map_err(|e| StepError::permanent(format!("cannot build the eval's rows: {e}")))
}

async fn execute(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let c = ctx
        .spec
        .body
        .config::<EvalConfig>()
        .ok_or_else(|| StepError::permanent("an eval asset without its configuration"))?;
    let cases: Vec<Map<String, Value>> = spine_jobs::cases::read(ctx, &c.dataset, &c.case_id)
        .await?
        .into_iter()
        .map(|(_, row)| row)
        .collect();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .map_err(|e| StepError::permanent(format!("cannot build an HTTP client: {e}")))?;
    let jobs: Vec<(usize, u32)> = (0..cases.len())
        .flat_map(|i| (0..c.samples).map(move |s| (i, s)))
        .collect();
    let mut results: Vec<Scored> = futures::stream::iter(jobs)
        .map(|(i, sample)| {
            let (client, case) = (&client, &cases[i]);
            async move {
                let answer = answer(c, client, case).await?;
                let scores = scores(c, client, case, &answer).await?;
                Ok::<_, Unavailable>(Scored {
                    case: i,
                    sample,
                    answer,
                    scores,
                })
            }
        })
        .buffer_unordered(c.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| StepError::retryable(format!("eval subject unavailable: {e}")))?;
    results.sort_by_key(|r| (r.case, r.sample));
    let batch = batch(c, &cases, &results)?;
    let n = results.len().max(1) as f64;
    let passed = results
        .iter()
        .filter(|r| r.scores.iter().all(|s| s.passed))
        .count();
    ctx.events
        .log(
            "info",
            &format!(
                "{} cases × {} samples: {passed} of {} passed",
                cases.len(),
                c.samples,
                results.len()
            ),
        )
        .await;
    let mut out = StepOutput::data(StepData::Batches(vec![batch]));
    out.metadata
        .insert("cases".into(), serde_json::json!(cases.len()));
    out.metadata
        .insert("pass_rate".into(), serde_json::json!(passed as f64 / n));
    out.metadata.insert(
        "subject_version".into(),
        serde_json::json!(c.subject_version),
    );
    Ok(out)
}

fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let (config, code) = parse(def)?;
    if config.slices.iter().any(|s| {
        [
            "case_id",
            "sample",
            "subject_version",
            "output",
            "error",
            "score",
            "passed",
            "cost",
        ]
        .contains(&s.as_str())
            || s.starts_with("score_")
    }) {
        return Err(def
            .error(
                CODE,
                "slices: a slice column is named like one of the eval's own columns",
            )
            .hint("rename it in the dataset"));
    }
    let dataset = config.dataset.clone();
    let mut out = KindConfig::new(AssetBody::Kind(Arc::new(config)), short_hash(&code));
    out.upstreams = vec![dataset];
    Ok(out)
}

impl AssetKind for EvalKind {
    fn name(&self) -> &'static str {
        "eval"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        configure(def)
    }

    fn audits<'a>(&self, body: &'a AssetBody) -> Option<&'a dyn Audits> {
        body.config::<EvalConfig>()
            .and_then(|c| c.gate.as_ref())
            .map(|g| g as &dyn Audits)
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> futures::future::BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(execute(ctx))
    }

    /// Known from the definition alone; the dataset must have the case id and input columns.
    fn schema<'a>(
        &'a self,
        spec: &'a AssetSpec,
        upstream: &'a UpstreamSchemas,
    ) -> futures::future::BoxFuture<'a, SchemaProbe> {
        Box::pin(async move {
            let Some(c) = spec.body.config::<EvalConfig>() else {
                return SchemaProbe::Unknown(String::new());
            };
            if let Some(d) = upstream.get(&c.dataset) {
                let missing = [&c.case_id, &c.input]
                    .into_iter()
                    .chain(&c.slices)
                    .find(|col| d.field_with_name(col).is_err());
                if let Some(col) = missing {
                    return SchemaProbe::Invalid(
                        DefinitionError::new(CODE, format!("the dataset '{}' has no column '{col}'", c.dataset))
                            .asset(spec.key.as_str())
                            .at_opt(spec.source.clone())
                            .hint("`case_id`, `input` (defaults id, input) and `slices` name columns of the dataset"),
                    );
                }
            }
            SchemaProbe::Known(Arc::new(schema(c)))
        })
    }
}
