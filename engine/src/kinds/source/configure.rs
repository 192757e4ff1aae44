//! Parsing and validating a source's definition (`path:` and its format options, or `postgres:`).

use super::delta::DeltaSource;
use super::postgres::{PgFields, PgSource};
use super::{FileSource, Origin, SourceConfig, SourceFormat};
use crate::error::DefinitionError;
use crate::kinds::{KindConfig, KindDefinition};
use crate::project::AssetBody;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvFields {
    header: Option<bool>,
    delimiter: Option<String>,
}

/// The file fields of a source, once it is known to read files.
struct FileFields {
    path: String,
    format: Option<SourceFormat>,
    csv: Option<CsvFields>,
}

/// A declared schema as text for the code version (a changed declaration changes what is read).
fn declared_text(def: &KindDefinition<'_>) -> String {
    match &def.schema {
        None => String::new(),
        Some(s) => s
            .fields()
            .iter()
            .map(|f| format!("|{}:{}", f.name(), f.data_type()))
            .collect(),
    }
}

fn pattern_of(c: &SourceConfig) -> &str {
    match &c.origin {
        Origin::Files(f) => &f.pattern,
        Origin::Postgres(_) | Origin::Delta(_) => "",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFields {
    path: Option<String>,
    postgres: Option<PgFields>,
    delta: Option<String>,
    storage_options: Option<std::collections::BTreeMap<String, String>>,
    format: Option<SourceFormat>,
    csv: Option<CsvFields>,
    snapshot: Option<bool>,
}

pub(super) fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let mut fields: SourceFields = def.parse()?;
    // Path-like fields take ${env:NAME} and ${var:NAME}.
    fields.path = fields
        .path
        .map(|p| def.render_path("path", &p))
        .transpose()?;
    fields.delta = fields
        .delta
        .map(|p| def.render_path("delta", &p))
        .transpose()?;
    let snapshot = fields.snapshot.unwrap_or(false);
    let storage_options = fields.storage_options;
    let remote_path = |p: &Option<String>| p.as_deref().is_some_and(|p| p.contains("://"));
    if storage_options.is_some() && !remote_path(&fields.path) && !remote_path(&fields.delta) {
        return Err(def.error(
            "E0240",
            "`storage_options:` are for an object-store `path:` or `delta:` (s3://…)",
        ));
    }
    let given = [
        fields.path.is_some(),
        fields.postgres.is_some(),
        fields.delta.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(def.error(
            "E0240",
            "a source has one of `path:`, `postgres:` and `delta:`, not several",
        ));
    }
    if let Some(delta) = fields.delta {
        if fields.format.is_some() || fields.csv.is_some() {
            return Err(def.error("E0240", "`format:` and `csv:` are for files, not `delta:`"));
        }
        let remote = if delta.contains("://") {
            let url = url::Url::parse(&format!("{}/", delta.trim_end_matches('/')))
                .ok()
                .filter(|u| matches!(u.scheme(), "s3" | "s3a"))
                .ok_or_else(|| {
                    def.error(
                        "E0240",
                        format!("delta: '{delta}': an s3:// URL or a local folder"),
                    )
                })?;
            let options = storage_options
                .clone()
                .unwrap_or_else(|| def.config.warehouse_options.clone());
            Some((url, options.into_iter().collect()))
        } else {
            None
        };
        let dir = match &remote {
            Some(_) => std::path::PathBuf::from(&delta),
            None => def.dir.join(&delta),
        };
        if let Some(why) = remote.is_none().then(|| def.config.outside(&dir)).flatten() {
            return Err(def.error("E0240", format!("delta: {why}")));
        }
        let code = format!("delta|{delta}|{snapshot}{}", declared_text(def));
        let config = SourceConfig {
            origin: Origin::Delta(DeltaSource { dir, remote }),
            snapshot,
            declared: def.schema.clone(),
        };
        return Ok(KindConfig::new(
            AssetBody::Kind(Arc::new(config)),
            crate::hash::short_hash(code.as_bytes()),
        ));
    }
    let path = match (fields.path, fields.postgres) {
        (Some(path), None) => path,
        (None, Some(pg)) => {
            if fields.format.is_some() || fields.csv.is_some() {
                return Err(def.error("E0240", "`format:` and `csv:` are for files, not `postgres:`"));
            }
            if pg.query.trim().is_empty() {
                return Err(def.error("E0240", "`postgres: {query: …}` is empty"));
            }
            let url_env = pg.url_env.unwrap_or_else(|| "DATABASE_URL".to_string());
            let plain = !url_env.is_empty()
                && url_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(def.error(
                    "E0240",
                    format!("`url_env: {url_env}` is not an environment variable name"),
                ));
            }
            let code = format!(
                "postgres|{url_env}|{}|{snapshot}{}",
                pg.query,
                declared_text(def)
            );
            let config = SourceConfig {
                origin: Origin::Postgres(PgSource {
                    url_env,
                    query: pg.query,
                }),
                snapshot,
                declared: def.schema.clone(),
            };
            return Ok(KindConfig::new(
                AssetBody::Kind(Arc::new(config)),
                crate::hash::short_hash(code.as_bytes()),
            ));
        }
        (Some(_), Some(_)) => unreachable!("refused above"),
        (None, None) => {
            return Err(def
                .error("E0240", "a source needs `path:` (files), `postgres:` (a query) or `delta:` (a Delta table)")
                .hint("e.g. `path: data/rates/*.csv`, `postgres: {url_env: DATABASE_URL, query: SELECT …}` or `delta: ../other/warehouse/ledger`"))
        }
    };
    let fields = FileFields {
        path,
        format: fields.format,
        csv: fields.csv,
    };
    let (dir, pattern) = if fields.path.contains("://") {
        // An object store: `s3://bucket/prefix/*.parquet`.
        match fields.path.rsplit_once('/') {
            Some((d, n)) if !n.is_empty() && d.matches('/').count() >= 2 => {
                (std::path::PathBuf::from(d), n.to_string())
            }
            _ => return Err(def.error("E0240", format!("path '{}' names no file", fields.path))),
        }
    } else {
        let full = def.dir.join(&fields.path);
        if let Some(why) = def.config.outside(&full) {
            return Err(def.error("E0240", format!("path: {why}")));
        }
        match (full.parent(), full.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().to_string()),
            _ => return Err(def.error("E0240", format!("path '{}' names no file", fields.path))),
        }
    };
    if dir.to_string_lossy().contains(['*', '?']) {
        return Err(def
            .error(
                "E0240",
                format!("path '{}': wildcards go in the file name only", fields.path),
            )
            .hint("e.g. `path: data/rates/*.csv`"));
    }
    let ext = pattern
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let format = match (fields.format, ext.as_deref()) {
        (Some(f), _) => f,
        (None, Some("parquet")) => SourceFormat::Parquet,
        (None, Some("csv")) => SourceFormat::Csv,
        (None, Some("json" | "jsonl" | "ndjson")) => SourceFormat::Json,
        _ => {
            return Err(def
                .error(
                    "E0240",
                    format!("cannot tell the format of '{}'", fields.path),
                )
                .hint("set `format: parquet`, `csv` or `json`"))
        }
    };
    let (header, delimiter) = match fields.csv {
        Some(c) if format != SourceFormat::Csv => {
            let _ = c;
            return Err(def.error("E0240", "`csv:` options are for `format: csv`"));
        }
        Some(c) => {
            let delimiter = match c.delimiter.as_deref() {
                None => b',',
                Some(d) if d.len() == 1 => d.as_bytes()[0],
                Some("\\t") => b'\t',
                Some(d) => {
                    return Err(
                        def.error("E0240", format!("csv delimiter '{d}' is not one character"))
                    )
                }
            };
            (c.header.unwrap_or(true), delimiter)
        }
        None => (true, b','),
    };
    let remote = if fields.path.contains("://") {
        let url = url::Url::parse(&format!("{}/", dir.display()))
            .map_err(|e| def.error("E0240", format!("path '{}': {e}", fields.path)))?;
        let options = storage_options.unwrap_or_else(|| def.config.warehouse_options.clone());
        Some(
            super::remote::Remote::new(&url, &options)
                .map_err(|m| def.error("E0240", format!("path {m}")))?,
        )
    } else {
        None
    };
    let config = SourceConfig {
        origin: Origin::Files(FileSource {
            dir,
            pattern,
            format,
            header,
            delimiter,
            remote,
        }),
        snapshot,
        declared: def.schema.clone(),
    };
    // The code version is the definition: a changed path or format makes downstream stale.
    let code = format!(
        "{}|{}|{:?}|{}|{}|{}{}",
        fields.path,
        pattern_of(&config),
        format,
        header,
        delimiter,
        snapshot,
        declared_text(def)
    );
    Ok(KindConfig::new(
        AssetBody::Kind(Arc::new(config)),
        crate::hash::short_hash(code.as_bytes()),
    ))
}
