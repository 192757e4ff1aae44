//! What an eval runs on each case: a prompt to a model behind any OpenAI-compatible endpoint
//! (`POST {base_url}/chat/completions`), or a command that reads the case on stdin and prints its
//! answer. The base URL may be `${env:NAME}` and the key is read from the variable `api_key_env`
//! names, at run time: neither is stored in the definition's code version or anywhere else.

use spine_jobs::openai::CallError;
use std::time::{Duration, Instant};

/// A chat model behind an OpenAI-compatible endpoint (the agents' client, `spine_jobs::openai`).
pub use spine_jobs::openai::ChatModel as Model;

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

pub use spine_jobs::openai::{expand_env, render};

/// Asks `model` `prompt`. A refused request (4xx) is the case's error; a rate limit is waited out
/// (as long as the endpoint asks, else a short backoff) up to three times, as is an endpoint that
/// cannot be reached or keeps failing; past that it is [`Unavailable`].
pub async fn complete(
    model: &Model,
    client: &reqwest::Client,
    prompt: &str,
) -> Result<Answer, Unavailable> {
    let started = Instant::now();
    let mut last = String::new();
    for attempt in 0..3u32 {
        match model.chat(client, prompt).await {
            Ok(r) => {
                return Ok(Answer {
                    output: r.text,
                    latency_ms: r.latency_ms,
                    prompt_tokens: r.prompt_tokens,
                    completion_tokens: r.completion_tokens,
                    error: None,
                })
            }
            Err(CallError::Refused(m)) => {
                return Ok(Answer {
                    latency_ms: started.elapsed().as_millis() as i64,
                    error: Some(m),
                    ..Answer::default()
                })
            }
            Err(CallError::RateLimited {
                message,
                retry_after,
            }) => {
                last = message;
                let backoff = Duration::from_millis(200 * 2u64.pow(attempt + 1));
                tokio::time::sleep(retry_after.unwrap_or(backoff).max(backoff)).await;
            }
            Err(CallError::Unavailable(m)) => return Err(Unavailable(m)),
        }
    }
    Err(Unavailable(format!(
        "the model endpoint kept rate limiting: {last}"
    )))
}

/// Runs `argv` with `input` on stdin in `dir`; its stdout, trimmed, is the answer.
pub async fn command(argv: &[String], dir: &std::path::Path, input: &str) -> Answer {
    let started = Instant::now();
    let out = spine_jobs::cases::pipe(argv, dir, input).await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match out {
        Ok(output) => Answer {
            output,
            latency_ms,
            ..Answer::default()
        },
        Err(e) => Answer {
            latency_ms,
            error: Some(e),
            ..Answer::default()
        },
    }
}
