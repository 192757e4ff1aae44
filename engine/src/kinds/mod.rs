//! Asset kinds: how an asset's data is computed. The engine knows kinds only through [`AssetKind`]; it
//! ships `sql` and `rust`, and other crates register more (`spine-jobs` adds `command`).

pub mod checkpoints;
mod definition;
mod events;
mod rust;
pub mod source;
pub(crate) mod sql;

pub use definition::{KindConfig, KindDefinition, COMMON_FIELDS};
mod capability;
mod json;
mod schema;
pub use capability::{parked_key, AuditResult, Audits, AwaitsExternal, Look, ReadsInPlace};
pub use events::{EventLog, EventSink, LOG_HEAD_LINES, LOG_LINE_BYTES, LOG_TAIL_LINES};
pub use json::rows_as_json;
pub use rust::RustKind;
pub use schema::UpstreamSchemas;
pub use sql::SqlKind;

use crate::error::DefinitionError;
use crate::key::{AssetKey, PartitionKey, RunId, StepKey};
use crate::project::AssetSpec;

use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// One upstream as a step sees it.
#[derive(Debug, Clone)]
pub struct UpstreamInput {
    /// Upstream asset.
    pub key: AssetKey,
    /// The partition of it this step reads (none: all of it).
    pub partition: Option<PartitionKey>,
    /// Its Delta table.
    pub table_url: Url,
    /// The Delta version this step reads.
    pub delta_version: i64,
}

/// Everything a kind needs to compute one asset.
pub struct StepContext {
    /// The run.
    pub run_id: RunId,
    /// The step: the asset and the partition it materializes (none for an unpartitioned asset).
    pub step: StepKey,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The asset.
    pub spec: AssetSpec,
    /// The project folder.
    pub project_root: PathBuf,
    /// A DataFusion session in which every upstream is registered under its key at the version read.
    pub session: SessionContext,
    /// Upstreams and the versions read.
    pub upstream: Vec<UpstreamInput>,
    /// A private folder for this attempt (outputs of external programs go here). Not created: a kind
    /// that needs it creates it; the engine removes it when the attempt ends.
    pub scratch: PathBuf,
    /// Reports logs, metadata and checks.
    pub events: EventSink,
    /// The payload of the signal that resumed this parked step, if it was parked and signalled.
    pub signal: Option<serde_json::Value>,
    /// For an incremental asset: its watermark column's maximum in the published table, as a SQL
    /// literal of the column's type (none on the first run or a rebuild: `{{ watermark }}` is NULL).
    pub watermark: Option<String>,
    /// The warehouse's data files, for kinds that hand upstream data to other programs.
    pub warehouse: Arc<dyn DataFiles>,
    /// The run store's checkpoints, where a kind that works in paid or slow steps (an agent's
    /// nodes) stores each as it completes, to continue from there after a crash or a retry.
    pub checkpoints: Arc<dyn checkpoints::Checkpoints>,
    /// What the run's steps may pay together ([`checkpoints::RunBudget`]; the agent kind checks its
    /// model calls against it through [`checkpoints::Checkpoints::spend`]).
    pub run_budget: checkpoints::RunBudget,
}

/// The data files that make up a version of an asset's table (the warehouse implements it): a table's
/// folder also holds the files of earlier versions until they are vacuumed, so a program reading the
/// folder would read old rows too; this list is exact.
#[async_trait::async_trait]
pub trait DataFiles: Send + Sync {
    /// `version` of `key`'s table, as URLs (`file://` for a local warehouse).
    async fn data_files(&self, key: &AssetKey, version: i64) -> Result<Vec<url::Url>, String>;
}

/// A check result reported by a step.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Name.
    pub name: String,
    /// Passed?
    pub passed: bool,
    /// `Error` blocks the commit; `Warn` is recorded only.
    pub severity: spine_schemas::events::CheckSeverity,
    /// Explanation.
    pub message: Option<String>,
}

/// The data a step produced, before it is written.
pub enum StepData {
    /// A stream of batches (written as it arrives).
    Stream(SendableRecordBatchStream),
    /// Batches in memory.
    Batches(Vec<RecordBatch>),
    /// No data yet: the step is parked until an external signal (an approval, a workflow's end). The
    /// executor records it `waiting`, frees its slot and ends its task; after
    /// [`Engine::signal`](crate::Engine::signal) the next `execute` runs the step again with the signal in
    /// [`StepContext::signal`].
    Waiting {
        /// What it waits for, for the user.
        reason: String,
    },
    /// Files written by an external program; `format` is `parquet`, `csv` or `jsonl`.
    Files {
        /// The files.
        paths: Vec<PathBuf>,
        /// Their format.
        format: String,
    },
}

/// What a step returns.
pub struct StepOutput {
    /// The data.
    pub data: StepData,
    /// Metadata merged into the materialization record.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Check results.
    pub checks: Vec<CheckResult>,
    /// Column-level lineage of the output (the `sql` kind derives it from the query's plan; a Rust
    /// asset may declare its own). Empty: unknown.
    pub columns: crate::column_lineage::ColumnLineage,
}

impl StepOutput {
    /// Parks the step until a signal (see [`StepData::Waiting`]).
    pub fn waiting(reason: impl Into<String>) -> Self {
        Self::data(StepData::Waiting {
            reason: reason.into(),
        })
    }

    /// Output with data only.
    pub fn data(data: StepData) -> Self {
        StepOutput {
            data,
            metadata: BTreeMap::new(),
            checks: Vec::new(),
            columns: Vec::new(),
        }
    }
}

/// Whether another attempt of a failed step can help; retries apply only to [`Retryable`](FailureClass::Retryable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// I/O, timeouts, 5xx answers, rate limits, a lost claim, a program's non-zero exit: the
    /// environment may behave differently next time.
    Retryable,
    /// SQL that does not plan, missing columns, cast errors, schema conflicts, bad configuration, a
    /// protocol error, a failed `error` check: another attempt would fail the same way.
    Permanent,
}

impl FailureClass {
    /// `retryable` or `permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retryable => "retryable",
            FailureClass::Permanent => "permanent",
        }
    }
}

/// A step failure: what to tell the user, and whether retrying can help. Its message is redacted
/// ([`crate::redact`]) when it is made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Retry or not.
    pub class: FailureClass,
    /// What went wrong, for the user.
    pub message: String,
    /// The least time before another attempt that the failing party asked for (a rate limit's
    /// `Retry-After`); the retry waits this long when its backoff would be shorter.
    pub retry_after: Option<std::time::Duration>,
    /// Whether the run stops with this step (an agent over a budget set to `on_exceed: stop_run`):
    /// steps that have not started are cancelled, as if the run had been cancelled.
    pub stops_run: bool,
}

impl StepError {
    /// The same failure, stopping the run (see [`StepError::stops_run`]).
    pub fn stopping_run(mut self) -> Self {
        self.stops_run = true;
        self
    }

    /// The same failure, with the least time before another attempt.
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// A failure another attempt may not repeat.
    pub fn retryable(m: impl std::fmt::Display) -> Self {
        let message = m.to_string();
        // Storage refusing who we are fails again the same way: permanent, saying what to do.
        if let Some(hint) = crate::error::credentials_failure(&message) {
            return StepError {
                class: FailureClass::Permanent,
                message: crate::redact::redacted(format!("{message} — {hint}")),
                retry_after: None,
                stops_run: false,
            };
        }
        StepError {
            class: FailureClass::Retryable,
            message: crate::redact::redacted(message),
            retry_after: None,
            stops_run: false,
        }
    }

    /// A failure another attempt would repeat.
    pub fn permanent(m: impl std::fmt::Display) -> Self {
        StepError {
            class: FailureClass::Permanent,
            message: crate::redact::redacted(m.to_string()),
            retry_after: None,
            stops_run: false,
        }
    }

    /// A failure of unknown cause: retryable (the `retries` setting decides).
    pub fn msg(m: impl std::fmt::Display) -> Self {
        Self::retryable(m)
    }

    /// A DataFusion failure, classed by its root cause, with `context` in front of the message.
    pub fn datafusion(context: &str, e: &datafusion::error::DataFusionError) -> Self {
        let mut message = format!("{context}: {}", e.strip_backtrace());
        if matches!(
            e.find_root(),
            datafusion::error::DataFusionError::ResourcesExhausted(_)
        ) {
            message.push_str(
                " — memory limit reached: raise [limits] memory in spine.toml (or SPINE_MEMORY_LIMIT), or make the query smaller",
            );
        }
        StepError {
            class: datafusion_class(e),
            message: crate::redact::redacted(message),
            retry_after: None,
            stops_run: false,
        }
    }
}

/// Plan, schema, SQL and data (cast, parse, overflow) errors are permanent; I/O, object-store, resource
/// and external errors are retryable.
pub fn datafusion_class(e: &datafusion::error::DataFusionError) -> FailureClass {
    use arrow::error::ArrowError as A;
    use datafusion::error::DataFusionError as D;
    match e.find_root() {
        D::Plan(_)
        | D::SchemaError(..)
        | D::SQL(..)
        | D::NotImplemented(_)
        | D::Configuration(_)
        | D::ResourcesExhausted(_)
        | D::Internal(_) => FailureClass::Permanent,
        D::ArrowError(a, _) => match a.as_ref() {
            A::IoError(..) | A::ExternalError(_) | A::MemoryError(_) => FailureClass::Retryable,
            _ => FailureClass::Permanent,
        },
        D::Execution(m) if m.contains("Cast error") || m.contains("Cannot cast") => {
            FailureClass::Permanent
        }
        _ => FailureClass::Retryable,
    }
}

/// An asset kind.
pub trait AssetKind: Send + Sync {
    /// The name used in definitions (`kind: sql`).
    fn name(&self) -> &'static str;
    /// Parses and validates this kind's own fields of a YAML definition (see [`KindDefinition`]).
    /// The default refuses: the kind can only be defined in code.
    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        Err(def
            .error(
                "E0205",
                format!("kind '{}' cannot be defined in YAML", def.kind),
            )
            .hint("assets of this kind are registered in code through the library API"))
    }
    /// Whether (and how) an asset of this kind, whose definition is `body`, is read in place instead
    /// of computed: observed, never copied into a table ([`ReadsInPlace`]). The default: it is not.
    fn reads_in_place<'a>(
        &self,
        _body: &'a crate::project::AssetBody,
    ) -> Option<&'a dyn ReadsInPlace> {
        None
    }
    /// Whether (and how) the kind audits a new materialization of an asset whose definition is
    /// `body` before it is published ([`Audits`]). The default: it does not.
    fn audits<'a>(&self, _body: &'a crate::project::AssetBody) -> Option<&'a dyn Audits> {
        None
    }
    /// Whether (and how) a parked step of an asset whose definition is `body` waits on work outside
    /// Spine that the daemon should poll ([`AwaitsExternal`]). The default: it does not (a parked
    /// step waits for `assets signal`).
    fn awaits_external<'a>(
        &self,
        _body: &'a crate::project::AssetBody,
    ) -> Option<&'a dyn AwaitsExternal> {
        None
    }
    /// Computes the asset.
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>>;
    /// The schema of the asset's output when the kind can tell it without computing the asset (a
    /// source's file footers or its query's description, a query planned over `upstream`'s schemas),
    /// for `assets check`. The default: unknown (a declared `schema:` or the existing table is used
    /// instead).
    fn schema<'a>(
        &'a self,
        spec: &'a AssetSpec,
        upstream: &'a UpstreamSchemas,
    ) -> BoxFuture<'a, SchemaProbe> {
        let _ = (spec, upstream);
        Box::pin(async { SchemaProbe::Unknown(String::new()) })
    }
}

/// What a kind can tell of an asset's schema without computing it ([`AssetKind::schema`]).
#[derive(Debug, Clone)]
pub enum SchemaProbe {
    /// The schema.
    Known(arrow::datatypes::SchemaRef),
    /// Not known now, and why (empty: the kind cannot tell); not an error (files not there yet).
    Unknown(String),
    /// The definition is wrong: what it says is an error (a drifted file, a query that does not plan).
    Invalid(DefinitionError),
}

/// The kinds an engine can execute.
#[derive(Clone, Default)]
pub struct KindRegistry {
    kinds: BTreeMap<&'static str, Arc<dyn AssetKind>>,
}

impl KindRegistry {
    /// The engine's built-in kinds: `sql` and `rust`.
    pub fn builtin() -> Self {
        let mut r = KindRegistry::default();
        r.register(Arc::new(SqlKind));
        r.register(Arc::new(RustKind));
        r.register(Arc::new(source::SourceKind));
        r
    }

    /// Adds (or replaces) a kind.
    pub fn register(&mut self, kind: Arc<dyn AssetKind>) {
        self.kinds.insert(kind.name(), kind);
    }

    /// The kind named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn AssetKind>> {
        self.kinds.get(name)
    }

    /// Names of all kinds.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
