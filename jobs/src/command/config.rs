//! The `command` kind's own definition fields, parsed and validated by the kind (the engine's loader
//! hands them over untouched):
//!
//! ```yaml
//! command: [python3, generate.py]   # required; relative paths resolve against the YAML file's folder
//! env: { ROWS: "${var:rows}" }      # extra environment; ${var:…} from [vars]
//! output_format: csv                # parquet | csv | jsonl (default: by file extension)
//! input_format: csv                 # also export each upstream as csv | jsonl | parquet
//! ```
//!
//! The code version covers the arguments, the environment and the content of every argument that
//! names a file in the YAML file's folder, so editing the script makes the asset stale.

use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::{KindConfig, KindDefinition};
use spine_engine::project::AssetBody;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A file format a program writes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header row.
    Csv,
    /// Newline-delimited JSON.
    Jsonl,
}

impl Format {
    /// `parquet`, `csv` or `jsonl` (also the file extension).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// The fields as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandFields {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    output_format: Option<Format>,
    input_format: Option<Format>,
    #[serde(default)]
    permanent_exit_codes: Vec<i64>,
}

/// A validated `command` definition, with `${var:…}` substituted.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory: the folder of the YAML file.
    pub cwd: PathBuf,
    /// Declared output format, if any.
    pub output_format: Option<Format>,
    /// Format upstreams are also exported to, if any.
    pub input_format: Option<Format>,
    /// Exit codes that mean "retrying will not help" (bad input, bad configuration): the step fails
    /// without retries. Any other non-zero exit is retryable.
    pub permanent_exit_codes: Vec<i32>,
}

/// Parses a `command` definition (see the module docs).
pub fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let fields: CommandFields = def.parse().map_err(|e| {
        if e.message.contains("missing field `command`") {
            def.error("E0206", "a command asset needs `command: [program, args…]`")
                .hint("e.g. command: [python3, make_rows.py]")
        } else {
            e
        }
    })?;
    if fields.command.is_empty() {
        return Err(def.error(
            "E0206",
            "a command asset needs `command: [program, args…]` with at least the program",
        ));
    }
    let argv = fields
        .command
        .iter()
        .map(|a| def.render(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = fields
        .env
        .iter()
        .map(|(k, v)| def.render(v).map(|v| (k.clone(), v)))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let mut permanent_exit_codes = Vec::new();
    for &c in &fields.permanent_exit_codes {
        match i32::try_from(c) {
            Ok(c) if (1..=255).contains(&c) => permanent_exit_codes.push(c),
            _ => {
                return Err(def
                    .error(
                        "E0206",
                        format!(
                            "permanent_exit_codes: {c} is not an exit code a program can return"
                        ),
                    )
                    .hint("list codes from 1 to 255, e.g. permanent_exit_codes: [2, 78]"))
            }
        }
    }
    let mut h = Vec::new();
    for a in &argv {
        h.extend_from_slice(a.as_bytes());
        h.push(0);
        let p = def.dir.join(a);
        if p.is_file() {
            if let Ok(bytes) = std::fs::read(&p) {
                h.extend_from_slice(&bytes);
            }
        }
    }
    for (k, v) in &env {
        h.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    let config = CommandConfig {
        argv,
        env,
        cwd: def.dir.to_path_buf(),
        output_format: fields.output_format,
        input_format: fields.input_format,
        permanent_exit_codes,
    };
    Ok(KindConfig::new(
        AssetBody::Kind(Arc::new(config)),
        short_hash(&h),
    ))
}
