//! `source`: data Spine reads but does not compute — a file or a glob of Parquet, CSV or
//! newline-delimited JSON files.
//!
//! ```yaml
//! key: raw/rates
//! kind: source
//! path: data/rates/*.csv        # relative to the YAML file; `*` and `?` in the file name
//! format: csv                   # parquet | csv | json (default: from the extension)
//! csv: {header: true, delimiter: ","}
//! snapshot: false               # true: copy each observation into a Delta version
//! ```
//!
//! Materializing a source *observes* it (`assets observe`): the matching files with their sizes and
//! modification times, a data version hashed from them, the schema and the row count. Nothing is copied:
//! downstream steps read exactly the observed files, and a new observation with another data version
//! makes them stale. An unchanged observation is not recorded again. With `snapshot: true` the files are
//! read into a Delta version instead, like any asset, so later runs read what the first one read.

use super::{AssetKind, KindConfig, KindDefinition, StepContext, StepData, StepError, StepOutput};
use crate::error::DefinitionError;
use crate::project::AssetBody;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::{
    csv::CsvFormat, json::JsonFormat, parquet::ParquetFormat, FileFormat,
};
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// The `source` kind.
pub struct SourceKind;

/// A file format a source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Parquet.
    Parquet,
    /// CSV.
    Csv,
    /// Newline-delimited JSON.
    Json,
}

/// A validated source definition.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The folder searched.
    pub dir: PathBuf,
    /// The file-name pattern in it.
    pub pattern: String,
    /// The format.
    pub format: SourceFormat,
    /// CSV: a header row.
    pub header: bool,
    /// CSV: the delimiter.
    pub delimiter: u8,
    /// Copy observations into Delta versions.
    pub snapshot: bool,
}

/// One file of an observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedFile {
    /// Absolute path.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Last modified, milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvFields {
    header: Option<bool>,
    delimiter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFields {
    path: String,
    format: Option<SourceFormat>,
    csv: Option<CsvFields>,
    snapshot: Option<bool>,
}

impl ObservedFile {
    /// The size and modification time (ms) of the file at `path` now, if it is there.
    pub fn stamp(path: &std::path::Path) -> Option<(u64, i64)> {
        let meta = std::fs::metadata(path).ok()?;
        let ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        Some((meta.len(), ms))
    }
}

impl SourceConfig {
    /// The files that match now, sorted by path; the error says what is wrong (for E0240 or a step).
    pub fn files(&self) -> Result<Vec<ObservedFile>, String> {
        let rd = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("cannot list {}: {e}", self.dir.display()))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !crate::selection::glob_match(&self.pattern, &name) || name.starts_with('.') {
                continue;
            }
            if !e.path().is_file() {
                continue;
            }
            let (size, modified_ms) = ObservedFile::stamp(&e.path())
                .ok_or_else(|| format!("cannot read {}", e.path().display()))?;
            out.push(ObservedFile {
                path: e.path().display().to_string(),
                size,
                modified_ms,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        if out.is_empty() {
            return Err(format!(
                "no file matches {}",
                self.dir.join(&self.pattern).display()
            ));
        }
        Ok(out)
    }

    fn options(&self) -> ListingOptions {
        let format: Arc<dyn FileFormat> = match self.format {
            SourceFormat::Parquet => Arc::new(ParquetFormat::default()),
            SourceFormat::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(self.header)
                    .with_delimiter(self.delimiter),
            ),
            SourceFormat::Json => Arc::new(JsonFormat::default()),
        };
        ListingOptions::new(format).with_file_extension("")
    }

    fn url(path: &str) -> Result<ListingTableUrl, String> {
        ListingTableUrl::parse(path).map_err(|e| format!("{path}: {e}"))
    }

    /// A table over exactly `files`. Every file's schema must be the first one's: a file that drifted
    /// is named with the column.
    pub async fn table(
        &self,
        ctx: &SessionContext,
        files: &[ObservedFile],
    ) -> Result<Arc<dyn TableProvider>, String> {
        let state = ctx.state();
        let options = self.options();
        let mut schema: Option<(String, arrow::datatypes::SchemaRef)> = None;
        let mut urls = Vec::with_capacity(files.len());
        for f in files {
            let url = Self::url(&f.path)?;
            let this = options
                .infer_schema(&state, &url)
                .await
                .map_err(|e| format!("cannot read {}: {}", f.path, first_line(&e.to_string())))?;
            match &schema {
                None => schema = Some((f.path.clone(), this)),
                Some((first, s)) => {
                    if let Some(problem) = drift(s, &this) {
                        return Err(format!(
                            "{}: {problem} (the first file, {first}, has another schema); fix the file or move it out of the source",
                            f.path
                        ));
                    }
                }
            }
            urls.push(url);
        }
        let (_, schema) = schema.ok_or("no file to read")?;
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        let table = ListingTable::try_new(config).map_err(|e| e.to_string())?;
        Ok(Arc::new(table))
    }
}

/// How `other`'s columns differ from `first`'s, if they do.
fn drift(first: &arrow::datatypes::Schema, other: &arrow::datatypes::Schema) -> Option<String> {
    for f in first.fields() {
        match other.field_with_name(f.name()) {
            Err(_) => return Some(format!("column '{}' is missing", f.name())),
            Ok(o) if o.data_type() != f.data_type() => {
                return Some(format!(
                    "column '{}' is {} here, {} in the first file",
                    f.name(),
                    o.data_type(),
                    f.data_type()
                ))
            }
            Ok(_) => {}
        }
    }
    other
        .fields()
        .iter()
        .find(|o| first.field_with_name(o.name()).is_err())
        .map(|o| format!("column '{}' is not in the first file", o.name()))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// A data version of an observation: its files' paths, sizes and modification times.
pub fn observation_version(files: &[ObservedFile]) -> String {
    let text: String = files
        .iter()
        .map(|f| format!("{}\t{}\t{}\n", f.path, f.size, f.modified_ms))
        .collect();
    crate::hash::short_hash(text.as_bytes())
}

impl AssetKind for SourceKind {
    fn name(&self) -> &'static str {
        "source"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        let fields: SourceFields = def.parse()?;
        let full = def.dir.join(&fields.path);
        let (dir, pattern) = match (full.parent(), full.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().to_string()),
            _ => return Err(def.error("E0240", format!("path '{}' names no file", fields.path))),
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
        let config = SourceConfig {
            dir,
            pattern,
            format,
            header,
            delimiter,
            snapshot: fields.snapshot.unwrap_or(false),
        };
        // The code version is the definition: a changed path or format makes downstream stale.
        let code = format!(
            "{}|{}|{:?}|{}|{}|{}",
            fields.path, config.pattern, config.format, header, delimiter, config.snapshot
        );
        Ok(KindConfig::new(
            AssetBody::Kind(Arc::new(config)),
            crate::hash::short_hash(code.as_bytes()),
        ))
    }

    /// Only `snapshot: true` sources execute: the observed files are read into a Delta version.
    /// (Other sources are observed by the engine, which records the files without reading them.)
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let config = ctx.spec.body.config::<SourceConfig>().ok_or_else(|| {
                StepError::permanent("internal: a source without its configuration")
            })?;
            let files = config.files().map_err(StepError::permanent)?;
            let table = config
                .table(&ctx.session, &files)
                .await
                .map_err(StepError::permanent)?;
            let df = ctx
                .session
                .read_table(table)
                .map_err(|e| StepError::datafusion("reading the source", &e))?;
            let stream = df
                .execute_stream()
                .await
                .map_err(|e| StepError::datafusion("reading the source", &e))?;
            Ok(StepOutput::data(StepData::Stream(stream)))
        })
    }
}
