//! `source`: data Spine reads but does not compute — a file or a glob of Parquet, CSV or
//! newline-delimited JSON files, or the rows of a PostgreSQL query (`postgres:`, see [`postgres`]).
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

use super::{
    AssetKind, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput,
};
use crate::error::DefinitionError;
use crate::project::{AssetBody, AssetSpec};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

mod configure;
pub mod delta;
mod files;
pub mod postgres;
pub mod remote;
use postgres::PgSource;

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
    /// Where the data is.
    pub origin: Origin,
    /// Copy observations into Delta versions.
    pub snapshot: bool,
    /// The declared schema (`schema:`): files are read with it (CSV, JSON) or checked against it
    /// (Parquet), a query's description is checked against it.
    pub declared: Option<arrow::datatypes::SchemaRef>,
}

/// Where a source's data is.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Files in a folder.
    Files(FileSource),
    /// The rows of a Postgres query.
    Postgres(PgSource),
    /// An existing Delta table.
    Delta(delta::DeltaSource),
}

/// What an observation found: the files (read in place later), or the rows of a query.
#[derive(Debug, Clone)]
pub enum Observed {
    /// The matching files, with sizes and modification times.
    Files(Vec<ObservedFile>),
    /// The query's rows.
    Rows(arrow::record_batch::RecordBatch),
    /// A Delta table's version.
    Delta(i64),
}

/// Files of a source.
#[derive(Debug, Clone)]
pub struct FileSource {
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
    /// The folder is on an object store (`dir` then holds its URL, for messages).
    pub remote: Option<remote::Remote>,
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
    /// An object store's ETag (local files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
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
    /// What the source is now, and its data version (files: their paths, sizes and modification
    /// times; a query: its rows' content hash). The error is a sentence for a step or E0240.
    pub async fn look(&self) -> Result<(String, Observed), String> {
        match &self.origin {
            Origin::Files(f) => {
                let files = f.files().await?;
                Ok((observation_version(&files), Observed::Files(files)))
            }
            Origin::Postgres(p) => {
                let batch = p.rows().await?;
                let mut h = crate::hash::DataHasher::new(batch.schema());
                h.update(&batch).map_err(|e| e.to_string())?;
                Ok((h.finish(), Observed::Rows(batch)))
            }
            Origin::Delta(d) => {
                let v = d.latest().await?;
                Ok((d.data_version(v), Observed::Delta(v)))
            }
        }
    }

    /// A table over what was observed.
    pub async fn table(
        &self,
        ctx: &SessionContext,
        observed: &Observed,
    ) -> Result<Arc<dyn TableProvider>, String> {
        match (&self.origin, observed) {
            (Origin::Files(f), Observed::Files(files)) => {
                f.table(ctx, files, self.declared.as_ref()).await
            }
            (_, Observed::Rows(b)) => {
                if let Some(declared) = &self.declared {
                    if let Some(m) =
                        crate::project::declared_schema::mismatch(declared, &b.schema())
                    {
                        return Err(format!(
                            "the query's rows do not match the declared schema: {m}"
                        ));
                    }
                }
                let t =
                    datafusion::datasource::MemTable::try_new(b.schema(), vec![vec![b.clone()]])
                        .map_err(|e| e.to_string())?;
                Ok(Arc::new(t))
            }
            (Origin::Delta(d), Observed::Delta(v)) => {
                let t = d.provider(ctx, *v).await?;
                if let Some(declared) = &self.declared {
                    if let Some(m) =
                        crate::project::declared_schema::mismatch(declared, &t.schema())
                    {
                        return Err(format!(
                            "{} at version {v} does not match the declared schema: {m}",
                            d.dir.display()
                        ));
                    }
                }
                Ok(t)
            }
            _ => Err("internal: a source observed as another origin".into()),
        }
    }

    /// What an observation records in its materialization's metadata.
    pub fn metadata(observed: &Observed) -> serde_json::Value {
        match observed {
            Observed::Files(files) => serde_json::json!({ "observed_files": files }),
            Observed::Rows(b) => serde_json::json!({ "postgres": {"rows": b.num_rows()} }),
            Observed::Delta(v) => serde_json::json!({ "delta": {"version": v} }),
        }
    }

    /// For an observation of local files (its `metadata`): the first file it recorded that no
    /// longer exists. `None` for other sources, and when every file is still there.
    pub fn vanished(&self, metadata: &serde_json::Value) -> Option<String> {
        let Origin::Files(FileSource { remote: None, .. }) = &self.origin else {
            return None;
        };
        let files: Vec<ObservedFile> =
            serde_json::from_value(metadata.get("observed_files")?.clone()).ok()?;
        files
            .into_iter()
            .find(|f| !std::path::Path::new(&f.path).exists())
            .map(|f| f.path)
    }

    /// A table over exactly what an observation recorded (its `metadata` and `data_version`): a file
    /// that changed since or went away, or a query whose rows changed, fails the read.
    pub async fn recorded(
        &self,
        ctx: &SessionContext,
        metadata: &serde_json::Value,
        data_version: &str,
    ) -> Result<Arc<dyn TableProvider>, String> {
        let observed = match &self.origin {
            Origin::Files(_) => {
                let files: Vec<ObservedFile> = serde_json::from_value(
                    metadata.get("observed_files").cloned().unwrap_or_default(),
                )
                .map_err(|e| format!("its observation is unreadable: {e}"))?;
                let remote = match &self.origin {
                    Origin::Files(FileSource {
                        remote: Some(r), ..
                    }) => Some(r),
                    _ => None,
                };
                for f in &files {
                    let now = match remote {
                        Some(r) => r.stamp(&f.path).await,
                        None => ObservedFile::stamp(std::path::Path::new(&f.path))
                            .map(|(s, m)| (s, m, None)),
                    };
                    if now != Some((f.size, f.modified_ms, f.etag.clone())) {
                        return Err(format!(
                            "{} {} since it was observed",
                            f.path,
                            if now.is_none() { "is gone" } else { "changed" },
                        ));
                    }
                }
                Observed::Files(files)
            }
            Origin::Postgres(_) => {
                let (version, observed) = self.look().await?;
                if version != data_version {
                    return Err("the query's rows changed since it was observed".into());
                }
                observed
            }
            // A Delta version does not change: read exactly the observed one.
            Origin::Delta(_) => Observed::Delta(
                metadata
                    .pointer("/delta/version")
                    .and_then(|v| v.as_i64())
                    .ok_or("its observation names no Delta version (observe again)")?,
            ),
        };
        self.table(ctx, &observed).await
    }
}

#[async_trait::async_trait]
impl super::ReadsInPlace for SourceConfig {
    async fn look(&self) -> Result<super::Look, String> {
        let (data_version, observed) = SourceConfig::look(self).await?;
        Ok(super::Look {
            data_version,
            metadata: SourceConfig::metadata(&observed),
            seen: Box::new(observed),
        })
    }

    async fn table(
        &self,
        ctx: &SessionContext,
        look: &super::Look,
    ) -> Result<Arc<dyn TableProvider>, String> {
        let observed = look
            .seen
            .downcast_ref::<Observed>()
            .ok_or("internal: a look by another kind")?;
        SourceConfig::table(self, ctx, observed).await
    }

    async fn recorded(
        &self,
        ctx: &SessionContext,
        metadata: &serde_json::Value,
        data_version: &str,
    ) -> Result<Arc<dyn TableProvider>, String> {
        SourceConfig::recorded(self, ctx, metadata, data_version).await
    }

    fn vanished(&self, metadata: &serde_json::Value) -> Option<String> {
        SourceConfig::vanished(self, metadata)
    }
}

/// A data version of an observation: its files' paths, sizes and modification times (and ETags).
pub fn observation_version(files: &[ObservedFile]) -> String {
    let text: String = files
        .iter()
        .map(|f| match &f.etag {
            None => format!("{}\t{}\t{}\n", f.path, f.size, f.modified_ms),
            Some(e) => format!("{}\t{}\t{}\t{e}\n", f.path, f.size, f.modified_ms),
        })
        .collect();
    crate::hash::short_hash(text.as_bytes())
}

impl AssetKind for SourceKind {
    fn name(&self) -> &'static str {
        "source"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        configure::configure(def)
    }

    /// A source is read in place unless `snapshot: true` copies it into Delta versions.
    fn reads_in_place<'a>(&self, body: &'a AssetBody) -> Option<&'a dyn super::ReadsInPlace> {
        body.config::<SourceConfig>()
            .filter(|c| !c.snapshot)
            .map(|c| c as &dyn super::ReadsInPlace)
    }

    /// The schema without reading data: the declared one; else the files' footers and headers (all of
    /// them, so a drifted file is an error here too), or the Postgres query's description.
    fn schema<'a>(
        &'a self,
        spec: &'a AssetSpec,
        _upstream: &'a super::UpstreamSchemas,
    ) -> BoxFuture<'a, SchemaProbe> {
        Box::pin(async move {
            let Some(config) = spec.body.config::<SourceConfig>() else {
                return SchemaProbe::Unknown(String::new());
            };
            if let Some(d) = &config.declared {
                return SchemaProbe::Known(d.clone());
            }
            let invalid = |m: String| {
                SchemaProbe::Invalid(
                    DefinitionError::new("E0240", m)
                        .asset(spec.key.as_str())
                        .at_opt(spec.source.clone())
                        .hint("fix the source (or declare its `schema:`)"),
                )
            };
            match &config.origin {
                Origin::Files(f) => match f.probe(None).await {
                    Ok(Some(s)) => SchemaProbe::Known(s),
                    Ok(None) => SchemaProbe::Unknown(format!(
                        "no file matches {} yet; declare its `schema:` to check before the files arrive",
                        f.dir.join(&f.pattern).display()
                    )),
                    Err(m) => invalid(m),
                },
                Origin::Delta(d) => {
                    let ctx = SessionContext::new();
                    match d.latest().await {
                        Ok(v) => match d.provider(&ctx, v).await {
                            Ok(t) => SchemaProbe::Known(t.schema()),
                            Err(m) => invalid(m),
                        },
                        Err(m) if d.remote.is_some() || !d.dir.exists() => SchemaProbe::Unknown(format!(
                            "{m}; declare its `schema:` to check before the table exists"
                        )),
                        Err(m) => invalid(m),
                    }
                }
                Origin::Postgres(p) => match p.schema().await {
                    Ok(s) => SchemaProbe::Known(s),
                    Err((true, m)) => invalid(m),
                    Err((false, m)) => SchemaProbe::Unknown(format!(
                        "{m}; or declare its `schema:` to check without the database"
                    )),
                },
            }
        })
    }

    /// Only `snapshot: true` sources execute: the observed files are read into a Delta version.
    /// (Other sources are observed by the engine, which records the files without reading them.)
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let config = ctx.spec.body.config::<SourceConfig>().ok_or_else(|| {
                StepError::permanent("internal: a source without its configuration")
            })?;
            let (_, observed) = config.look().await.map_err(StepError::permanent)?;
            let table = config
                .table(&ctx.session, &observed)
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
