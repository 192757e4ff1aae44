//! What an eval runs on each case: a prompt to a model behind any OpenAI-compatible endpoint
//! (`POST {base_url}/chat/completions`), or a command that reads the case on stdin and prints its
//! answer. The base URL may be `${env:NAME}` and the key is read from the variable `api_key_env`
//! names, at run time: neither is stored in the definition's code version or anywhere else.

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// A chat model behind an OpenAI-compatible endpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The API's base URL, e.g. `${env:OPENAI_BASE_URL}` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model's name.
    pub name: String,
    /// The variable holding the API key (none: no `Authorization` header).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Sampling temperature (default 0).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Completion length limit.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// A system message.
    #[serde(default)]
    pub system: Option<String>,
}

/// One answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The text.
    pub output: String,
    /// Wall time.
    pub latency_ms: i64,
    /// Prompt tokens the endpoint reported.
    pub prompt_tokens: i64,
    /// Completion tokens the endpoint reported.
    pub completion_tokens: i64,
    /// Why there is no answer (a refused request, a failed command): the case scores 0.
    pub error: Option<String>,
}

/// Why a subject could not be run at all (the step fails, retryably: the endpoint is down).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// `text` with `${env:NAME}` replaced from the environment.
pub fn expand_env(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${env:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated '${{env:' in '{text}'"))?;
        let name = &after[..end];
        out.push_str(
            &std::env::var(name)
                .map_err(|_| format!("environment variable '{name}' is not set"))?,
        );
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `template` with `{{ name }}` replaced by the case's fields (strings as they are, other values as
/// JSON); an unknown name is left as it is.
pub fn render(template: &str, fields: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = after[..end].trim();
        match fields.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None if fields.contains_key(name) => {}
            Some(v) => out.push_str(&v.to_string()),
            None => out.push_str(&rest[i..i + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

impl Model {
    /// Asks the model `prompt`. A refused request (4xx) is the case's error; an endpoint that cannot
    /// be reached or keeps failing (5xx, after three tries) is [`Unavailable`].
    pub async fn complete(
        &self,
        client: &reqwest::Client,
        prompt: &str,
    ) -> Result<Answer, Unavailable> {
        let base = expand_env(&self.base_url).map_err(Unavailable)?;
        let key = match &self.api_key_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| Unavailable(format!("the API key variable '{var}' is not set")))?,
            ),
            None => None,
        };
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        let mut body = json!({
            "model": self.name,
            "messages": messages,
            "temperature": self.temperature.unwrap_or(0.0),
        });
        if let Some(m) = self.max_tokens {
            body["max_tokens"] = json!(m);
        }
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let bytes = serde_json::to_vec(&body).map_err(|e| Unavailable(e.to_string()))?;
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            let started = Instant::now();
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(bytes.clone());
            if let Some(k) = &key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let status = resp.status();
            let text = resp.bytes().await.map_err(|e| Unavailable(e.to_string()))?;
            let latency_ms = started.elapsed().as_millis() as i64;
            if status.is_server_error() || status.as_u16() == 429 {
                last = format!("{url}: HTTP {status}");
                continue;
            }
            if !status.is_success() {
                return Ok(Answer {
                    latency_ms,
                    error: Some(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&text)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    )),
                    ..Answer::default()
                });
            }
            let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
            let output = v["choices"][0]["message"]["content"].as_str();
            return Ok(Answer {
                output: output.unwrap_or_default().to_string(),
                latency_ms,
                prompt_tokens: v["usage"]["prompt_tokens"].as_i64().unwrap_or(0),
                completion_tokens: v["usage"]["completion_tokens"].as_i64().unwrap_or(0),
                error: output
                    .is_none()
                    .then(|| "the response has no choices[0].message.content".to_string()),
            });
        }
        Err(Unavailable(format!(
            "the model endpoint failed three times: {last}"
        )))
    }
}

/// Runs `argv` with `input` on stdin in `dir`; its stdout, trimmed, is the answer.
pub async fn command(argv: &[String], dir: &std::path::Path, input: &str) -> Answer {
    use tokio::io::AsyncWriteExt;
    let started = Instant::now();
    let Some((program, args)) = argv.split_first() else {
        return Answer {
            error: Some("an empty command".into()),
            ..Answer::default()
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Answer {
                error: Some(format!("cannot start '{program}': {e}")),
                ..Answer::default()
            }
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let out = child.wait_with_output().await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match out {
        Ok(o) if o.status.success() => Answer {
            output: String::from_utf8_lossy(&o.stdout).trim().to_string(),
            latency_ms,
            ..Answer::default()
        },
        Ok(o) => Answer {
            latency_ms,
            error: Some(format!(
                "'{program}' exited with {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .chars()
                    .take(300)
                    .collect::<String>()
            )),
            ..Answer::default()
        },
        Err(e) => Answer {
            latency_ms,
            error: Some(format!("'{program}': {e}")),
            ..Answer::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_case_fields() {
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"input": "2 + 2", "n": 3, "none": null}"#).unwrap();
        assert_eq!(
            render("Q: {{ input }} ({{n}}) {{none}} {{ missing }}", &fields),
            "Q: 2 + 2 (3)  {{ missing }}"
        );
    }
}
