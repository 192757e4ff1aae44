//! What each kind of node does with a case's fields (its input row, then its state over it): ask a
//! model, run a query over assets, make an HTTP request, run a program, call a Rust function. A
//! node's answer is either a value for the case (its error, too, is the case's: a refused request, a
//! program that failed), or a failure of the step (an endpoint out of reach or rate limited, a query
//! that does not plan), which its next attempt repeats from the last checkpoint.

use super::config::{Action, FieldType, HttpTool};
use super::AgentFunction;
use crate::openai::{expand_env, render, CallError, Reply};
use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value};
use spine_engine::kinds::{StepContext, StepError};
use std::collections::HashMap;
use std::time::Instant;

/// What a node spent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// At the model's prices.
    pub cost: f64,
    /// Wall time.
    pub latency_ms: i64,
    /// Model calls (0 or 1).
    pub calls: i64,
}

impl Usage {
    /// This and `other`.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost += other.cost;
        self.latency_ms += other.latency_ms;
        self.calls += other.calls;
    }

    /// As a checkpoint stores it.
    pub fn to_json(self) -> Value {
        serde_json::json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "calls": self.calls,
        })
    }

    /// As a checkpoint stored it.
    pub fn from_json(v: &Value) -> Usage {
        Usage {
            prompt_tokens: v["prompt_tokens"].as_i64().unwrap_or(0),
            completion_tokens: v["completion_tokens"].as_i64().unwrap_or(0),
            cost: v["cost"].as_f64().unwrap_or(0.0),
            latency_ms: v["latency_ms"].as_i64().unwrap_or(0),
            calls: v["calls"].as_i64().unwrap_or(0),
        }
    }
}

/// What a node did for its case.
pub struct Done {
    /// Its result, or the case's error.
    pub result: Result<Value, String>,
    /// What it spent.
    pub usage: Usage,
}

/// Everything nodes share within a step.
pub struct Tools<'a> {
    /// The step.
    pub ctx: &'a StepContext,
    /// HTTP for models and `http` nodes.
    pub client: &'a reqwest::Client,
    /// Registered functions.
    pub functions: &'a HashMap<String, AgentFunction>,
    /// Where commands run.
    pub dir: &'a std::path::Path,
}

/// A model's call failing the step: retryable, after what a rate limit asked for.
fn call_failed(e: CallError) -> StepError {
    match e {
        CallError::RateLimited {
            message,
            retry_after,
        } => {
            let err = StepError::retryable(format!("model rate limited: {message}"));
            match retry_after {
                Some(d) => err.with_retry_after(d),
                None => err,
            }
        }
        other => StepError::retryable(format!("model endpoint unavailable: {other}")),
    }
}

/// Runs `action` over `fields`.
pub async fn run(
    tools: &Tools<'_>,
    action: &Action,
    fields: &Map<String, Value>,
) -> Result<Done, StepError> {
    let started = Instant::now();
    let elapsed = |s: Instant| s.elapsed().as_millis() as i64;
    let plain = |result, s: Instant| Done {
        result,
        usage: Usage {
            latency_ms: elapsed(s),
            ..Usage::default()
        },
    };
    match action {
        Action::Llm {
            prompt,
            model,
            prices,
        } => match model.chat(tools.client, &render(prompt, fields)).await {
            Ok(Reply {
                text,
                prompt_tokens,
                completion_tokens,
                latency_ms,
            }) => Ok(Done {
                result: Ok(Value::String(text)),
                usage: Usage {
                    prompt_tokens,
                    completion_tokens,
                    cost: prompt_tokens as f64 / 1000.0 * prices.prompt_per_1k
                        + completion_tokens as f64 / 1000.0 * prices.completion_per_1k,
                    latency_ms,
                    calls: 1,
                },
            }),
            Err(CallError::Refused(m)) => Ok(Done {
                result: Err(format!("the model refused: {m}")),
                usage: Usage {
                    latency_ms: elapsed(started),
                    calls: 1,
                    ..Usage::default()
                },
            }),
            Err(e) => Err(call_failed(e)),
        },
        Action::Sql { rewritten } => {
            Ok(plain(Ok(sql(tools.ctx, rewritten, fields).await?), started))
        }
        Action::Http(h) => Ok(plain(http(tools.client, h, fields).await?, started)),
        Action::Command(argv) => Ok(plain(command(argv, tools.dir, fields).await, started)),
        Action::Rust(name) => {
            let f = tools.functions.get(name).ok_or_else(|| {
                StepError::permanent(format!("no agent function '{name}' is registered"))
            })?;
            Ok(plain(f(fields), started))
        }
    }
}

fn scalar(v: &Value) -> ScalarValue {
    match v {
        Value::Bool(b) => ScalarValue::Boolean(Some(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int64(Some(i)),
            None => ScalarValue::Float64(n.as_f64()),
        },
        Value::String(s) => ScalarValue::Utf8(Some(s.clone())),
        Value::Null => ScalarValue::Utf8(None),
        other => ScalarValue::Utf8(Some(other.to_string())),
    }
}

/// The query's first row: its one value, or an object of its columns (no row: null).
async fn sql(
    ctx: &StepContext,
    rewritten: &str,
    fields: &Map<String, Value>,
) -> Result<Value, StepError> {
    let fail =
        |d: datafusion::error::DataFusionError| StepError::datafusion("an agent's sql node", &d);
    let params: HashMap<String, ScalarValue> =
        fields.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
    let batches = ctx
        .session
        .sql(rewritten)
        .await
        .map_err(fail)?
        .with_param_values(params)
        .map_err(fail)?
        .limit(0, Some(1))
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    let rows = spine_engine::kinds::rows_as_json(&batches)
        .map_err(|e| StepError::permanent(format!("an agent's sql node: {e}")))?;
    Ok(match rows.into_iter().next() {
        None => Value::Null,
        Some(row) if row.len() == 1 => row.into_iter().next().map(|(_, v)| v).unwrap_or_default(),
        Some(row) => Value::Object(row),
    })
}

/// The body of the answer (JSON when it parses); a 4xx is the case's error.
async fn http(
    client: &reqwest::Client,
    h: &HttpTool,
    fields: &Map<String, Value>,
) -> Result<Result<Value, String>, StepError> {
    let url = expand_env(&render(&h.url, fields)).map_err(StepError::permanent)?;
    let req = if h.method.eq_ignore_ascii_case("POST") {
        let body = h
            .body
            .as_deref()
            .map(|b| render(b, fields))
            .unwrap_or_default();
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
    } else {
        client.get(&url)
    };
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let resp = req.send().await.map_err(|_| {
        StepError::retryable(format!("an agent's http node: {host} cannot be reached"))
    })?;
    let status = resp.status();
    let wait = crate::openai::retry_after(resp.headers());
    let text = resp
        .text()
        .await
        .map_err(|e| StepError::retryable(format!("an agent's http node: {host}: {e}")))?;
    if status.as_u16() == 429 || status.is_server_error() {
        let err = StepError::retryable(format!("an agent's http node: {host} answered {status}"));
        return Err(match wait {
            Some(d) => err.with_retry_after(d),
            None => err,
        });
    }
    if !status.is_success() {
        return Ok(Err(format!(
            "{host} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(Ok(
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    ))
}

/// The program's stdout (JSON when it parses); a failure is the case's error.
async fn command(
    argv: &[String],
    dir: &std::path::Path,
    fields: &Map<String, Value>,
) -> Result<Value, String> {
    let input = Value::Object(fields.clone()).to_string();
    let text = crate::cases::pipe(argv, dir, &input).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The first number in `text`.
fn first_number(text: &str) -> Option<f64> {
    let re_start = text.find(|c: char| c.is_ascii_digit() || c == '-' || c == '.')?;
    let rest = &text[re_start..];
    let end = rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(rest.len(), |(i, _)| i);
    // "0.25." ends a sentence: the trailing dot is not the number's.
    let candidate = rest[..end].trim_end_matches('.');
    candidate
        .parse()
        .ok()
        .filter(|_| candidate.chars().any(|c| c.is_ascii_digit()))
        .or_else(|| first_number(&rest[1..]))
}

/// `v` read as `ty` (a value that is not one is null).
pub fn coerce(v: Value, ty: FieldType) -> Value {
    let text = match &v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    match ty {
        FieldType::String => match v {
            Value::String(s) => Value::String(s.trim().to_string()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
        FieldType::Json => match v {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            other => other,
        },
        FieldType::Float => first_number(&text)
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        FieldType::Int => {
            first_number(&text).map_or(Value::Null, |n| Value::from(n.trunc() as i64))
        }
        FieldType::Bool => match text.to_ascii_lowercase().trim_end_matches('.') {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_as_their_fields_types() {
        assert_eq!(
            coerce(json!(" billing \n"), FieldType::String),
            json!("billing")
        );
        assert_eq!(
            coerce(json!("Confidence: 0.25."), FieldType::Float),
            json!(0.25)
        );
        assert_eq!(coerce(json!("about 12 items"), FieldType::Int), json!(12));
        assert_eq!(coerce(json!(7), FieldType::Float), json!(7.0));
        assert_eq!(coerce(json!("Yes."), FieldType::Bool), json!(true));
        assert_eq!(coerce(json!("maybe"), FieldType::Bool), Value::Null);
        assert_eq!(coerce(json!("no number"), FieldType::Float), Value::Null);
        assert_eq!(
            coerce(json!("{\"a\": 1}"), FieldType::Json),
            json!({"a": 1})
        );
        assert_eq!(coerce(json!("-3 degrees"), FieldType::Int), json!(-3));
    }
}
