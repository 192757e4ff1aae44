//! The `temporal` kind's definition:
//!
//! ```yaml
//! key: ml/scores
//! kind: temporal
//! workflow: ScoreBatch          # the workflow type a worker on the task queue runs
//! task_queue: scoring
//! input: SELECT id, amount FROM raw.orders   # optional: its rows (a JSON array) are the argument
//! address: ${env:TEMPORAL_ADDRESS}           # default: TEMPORAL_ADDRESS, else 127.0.0.1:7233
//! namespace: default
//! execution_timeout: 2h                      # optional
//! ```
//!
//! The workflow's result is the asset's data: a JSON array of objects is its rows, an object one
//! row, anything else one row with a `result` column. The code version covers the workflow type,
//! the task queue, the input query, the namespace and the address as written.

use spine_engine::error::DefinitionError;
use spine_engine::kinds::KindDefinition;
use spine_engine::AssetKey;
use std::time::Duration;

/// The error code of a bad `temporal` definition.
pub const CODE: &str = "E0281";

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    workflow: String,
    task_queue: String,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default)]
    execution_timeout: Option<String>,
}

fn default_namespace() -> String {
    "default".into()
}

/// A validated `temporal` definition.
#[derive(Debug, Clone)]
pub struct TemporalConfig {
    /// The workflow type.
    pub workflow: String,
    /// Its task queue.
    pub task_queue: String,
    /// The input query, table references rewritten.
    pub input: Option<String>,
    /// The frontend's address as written (`${env:…}` expanded when connecting).
    pub address: Option<String>,
    /// The namespace.
    pub namespace: String,
    /// The workflow's execution timeout.
    pub execution_timeout: Option<Duration>,
}

/// Parses a `temporal` definition: the configuration, the assets its input reads, the text its code
/// version covers.
pub fn parse(
    def: &KindDefinition<'_>,
) -> Result<(TemporalConfig, Vec<AssetKey>, String), DefinitionError> {
    let f: Fields = def.parse()?;
    let bad = |m: String| def.error(CODE, m);
    if f.workflow.trim().is_empty() || f.task_queue.trim().is_empty() {
        return Err(bad(
            "`workflow` and `task_queue` name the workflow type and its task queue".into(),
        ));
    }
    let (input, upstreams) = match &f.input {
        Some(q) => {
            let (rewritten, tables) = def.query("input", &def.render(q)?)?;
            (Some(rewritten), tables)
        }
        None => (None, Vec::new()),
    };
    let execution_timeout = match &f.execution_timeout {
        Some(t) => Some(
            spine_engine::duration::parse_duration(t)
                .map_err(|m| bad(format!("execution_timeout: {m}")))?,
        ),
        None => None,
    };
    let code = serde_json::to_string(&f).unwrap_or_default();
    Ok((
        TemporalConfig {
            workflow: f.workflow,
            task_queue: f.task_queue,
            input,
            address: f.address,
            namespace: f.namespace,
            execution_timeout,
        },
        upstreams,
        code,
    ))
}

impl TemporalConfig {
    /// The frontend's URL: `address`, else `TEMPORAL_ADDRESS`, else `127.0.0.1:7233`.
    pub fn url(&self) -> Result<url::Url, String> {
        frontend_url(self.address.as_deref())
    }
}

/// A Temporal frontend's URL: `address` (`${env:…}` expanded), else `TEMPORAL_ADDRESS`, else
/// `127.0.0.1:7233`.
pub fn frontend_url(address: Option<&str>) -> Result<url::Url, String> {
    let address = match address {
        Some(a) => crate::openai::expand_env(a)?,
        None => std::env::var("TEMPORAL_ADDRESS").unwrap_or_else(|_| "127.0.0.1:7233".into()),
    };
    let with_scheme = if address.contains("://") {
        address.clone()
    } else {
        format!("http://{address}")
    };
    url::Url::parse(&with_scheme)
        .map_err(|e| format!("the Temporal address '{address}' is not host:port ({e})"))
}
