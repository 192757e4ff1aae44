//! A chat model behind any OpenAI-compatible endpoint (`POST {base_url}/chat/completions`), spoken
//! with async-openai's wire types over reqwest (so a rate limit's `Retry-After` reaches the step), and
//! the two text helpers agents and evals share: `${env:NAME}` expansion and `{{ field }}` templates.
//!
//! The base URL may be `${env:NAME}`; the key is read from the variable `api_key_env` names, at call
//! time: neither is stored in a code version, a checkpoint, an event or a log.

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest,
    CreateChatCompletionResponse,
};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// A chat model as an agent's `model:` (or a node's) names it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChatModel {
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

/// A completed call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// The answer's text.
    pub text: String,
    /// Prompt tokens the endpoint reported.
    pub prompt_tokens: i64,
    /// Completion tokens the endpoint reported.
    pub completion_tokens: i64,
    /// Wall time of the call.
    pub latency_ms: i64,
}

/// Why a call gave no answer.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The endpoint refused the request (4xx but 429), or answered without text: asking again will
    /// not help; the case records it.
    Refused(String),
    /// 429: asking again after `retry_after` (from `Retry-After` or `retry-after-ms`) may.
    RateLimited {
        /// What the endpoint said.
        message: String,
        /// How long it asked to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The endpoint could not be reached, or kept failing (5xx, after three tries), or a setting is
    /// missing (an unset variable): the step fails retryably.
    Unavailable(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(m) | CallError::Unavailable(m) => f.write_str(m),
            CallError::RateLimited { message, .. } => f.write_str(message),
        }
    }
}

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

/// `template` with `{{ name }}` replaced by the fields (strings as they are, other values as JSON);
/// an unknown name is left as it is.
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

/// How long a 429 asks to wait: `retry-after-ms`, else `Retry-After` in seconds (an HTTP date is
/// not honoured: none of the OpenAI-compatible servers send one).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    if let Some(ms) = get("retry-after-ms").filter(|v| v.is_finite() && *v >= 0.0) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 86_400.0)
        .map(Duration::from_secs_f64)
}

impl ChatModel {
    /// The request for `prompt`.
    fn request(&self, prompt: &str) -> CreateChatCompletionRequest {
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(ChatCompletionRequestMessage::System(
                ChatCompletionRequestSystemMessage {
                    content: ChatCompletionRequestSystemMessageContent::Text(system.clone()),
                    name: None,
                },
            ));
        }
        messages.push(ChatCompletionRequestMessage::User(
            ChatCompletionRequestUserMessage {
                content: ChatCompletionRequestUserMessageContent::Text(prompt.to_string()),
                name: None,
            },
        ));
        // `max_tokens`, not `max_completion_tokens`: every OpenAI-compatible server (llama.cpp,
        // vLLM, Ollama) reads the older name, while some ignore the newer one.
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            messages,
            model: self.name.clone(),
            temperature: Some(self.temperature.unwrap_or(0.0) as f32),
            max_tokens: self.max_tokens,
            ..Default::default()
        }
    }

    /// Asks the model `prompt`. A 5xx or an unreachable endpoint is tried three times.
    pub async fn chat(&self, client: &reqwest::Client, prompt: &str) -> Result<Reply, CallError> {
        let base = expand_env(&self.base_url).map_err(CallError::Unavailable)?;
        let key = match &self.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                CallError::Unavailable(format!("the API key variable '{var}' is not set"))
            })?),
            None => None,
        };
        let url = format!("{}/chat/completions", base.trim_end_matches('/'));
        let body = serde_json::to_vec(&self.request(prompt))
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            let started = Instant::now();
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(k) = &key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{url}: {}", without_url(&e));
                    continue;
                }
            };
            let status = resp.status();
            let wait = retry_after(resp.headers());
            let bytes = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last = format!("{url}: {}", without_url(&e));
                    continue;
                }
            };
            let latency_ms = started.elapsed().as_millis() as i64;
            let said = || {
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            };
            if status.as_u16() == 429 {
                return Err(CallError::RateLimited {
                    message: format!("{url}: HTTP 429 (rate limited): {}", said()),
                    retry_after: wait,
                });
            }
            if status.is_server_error() {
                last = format!("{url}: HTTP {status}");
                continue;
            }
            if !status.is_success() {
                return Err(CallError::Refused(format!("HTTP {status}: {}", said())));
            }
            let parsed = completion(&bytes).map_err(|e| {
                CallError::Refused(format!(
                    "the endpoint's answer is not a chat completion ({e}): {}",
                    said()
                ))
            })?;
            let usage = parsed.usage.as_ref();
            let choice = parsed.choices.into_iter().next();
            let text = choice.and_then(|c| c.message.content.or(c.message.refusal));
            let Some(text) = text else {
                return Err(CallError::Refused(
                    "the answer has no choices[0].message.content".into(),
                ));
            };
            return Ok(Reply {
                text,
                prompt_tokens: usage.map_or(0, |u| i64::from(u.prompt_tokens)),
                completion_tokens: usage.map_or(0, |u| i64::from(u.completion_tokens)),
                latency_ms,
            });
        }
        Err(CallError::Unavailable(format!(
            "the model endpoint failed three times: {last}"
        )))
    }
}

/// A chat completion, read leniently: servers that leave out the envelope's `id`, `object`,
/// `created` or `model` (some OpenAI-compatible ones do) still answer.
fn completion(bytes: &[u8]) -> Result<CreateChatCompletionResponse, serde_json::Error> {
    let mut v: Value = serde_json::from_slice(bytes)?;
    if let Some(o) = v.as_object_mut() {
        for (k, d) in [
            ("id", Value::from("")),
            ("object", Value::from("chat.completion")),
            ("created", Value::from(0)),
            ("model", Value::from("")),
        ] {
            o.entry(k).or_insert(d);
        }
    }
    serde_json::from_value(v)
}

/// A reqwest error's text without the URL it carries (the URL may hold a key in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "the endpoint");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_fields() {
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"input": "2 + 2", "n": 3, "none": null}"#).unwrap();
        assert_eq!(
            render("Q: {{ input }} ({{n}}) {{none}} {{ missing }}", &fields),
            "Q: 2 + 2 (3)  {{ missing }}"
        );
    }

    #[test]
    fn reads_how_long_a_rate_limit_asks_to_wait() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "-3".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn an_answer_without_its_envelope_is_still_read() {
        let c = completion(br#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}"#).unwrap();
        assert_eq!(c.choices[0].message.content.as_deref(), Some("hi"));
        assert!(completion(b"{\"error\": 1}").is_err());
    }

    #[test]
    fn the_request_is_the_openai_wire_shape() {
        let m = ChatModel {
            base_url: "http://x/v1".into(),
            name: "m".into(),
            api_key_env: None,
            temperature: None,
            max_tokens: Some(20),
            system: Some("be brief".into()),
        };
        let v = serde_json::to_value(m.request("hi")).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][1]["role"], "user");
        assert_eq!(v["messages"][1]["content"], "hi");
        assert_eq!(v["max_tokens"], 20);
        assert_eq!(v["temperature"], 0.0);
    }
}
