//! Failure classes. Definition errors (bad user input) carry a stable code, the file and line, and a hint;
//! the CLI maps them to exit code 2. Everything else is a failure of the work or of the environment.

use std::fmt;
use std::path::PathBuf;

/// Where in the user's files a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File, relative to the project root where possible.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}", self.file.display(), l),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// A problem in the project's definitions or in the user's command-line input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// Stable code, e.g. `E0203`; see `docs/reference/errors.md`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Asset concerned, when there is one.
    pub asset: Option<String>,
    /// File and line, when known.
    pub location: Option<Box<Location>>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl DefinitionError {
    /// A new error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        DefinitionError {
            code,
            message: message.into(),
            asset: None,
            location: None,
            hint: None,
        }
    }
    /// Attaches the asset concerned.
    pub fn asset(mut self, key: impl Into<String>) -> Self {
        self.asset = Some(key.into());
        self
    }
    /// Attaches a location.
    pub fn at(mut self, file: impl Into<PathBuf>, line: Option<usize>) -> Self {
        self.location = Some(Box::new(Location {
            file: file.into(),
            line,
        }));
        self
    }
    /// Attaches an optional location.
    pub fn at_opt(mut self, loc: Option<Location>) -> Self {
        self.location = loc.map(Box::new);
        self
    }
    /// Attaches a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)?;
        match (&self.location, &self.asset) {
            (Some(loc), Some(a)) => write!(f, " (asset '{a}', {loc})")?,
            (Some(loc), None) => write!(f, " ({loc})")?,
            (None, Some(a)) => write!(f, " (asset '{a}')")?,
            (None, None) => {}
        }
        if let Some(h) = &self.hint {
            write!(f, " — {h}")?;
        }
        Ok(())
    }
}

/// All the definition problems found in one pass, so a user fixes them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DefinitionErrors {}

impl From<DefinitionError> for DefinitionErrors {
    fn from(e: DefinitionError) -> Self {
        DefinitionErrors(vec![e])
    }
}

/// Any engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Invalid project or command-line input (exit code 2).
    #[error("{0}")]
    Definition(#[from] DefinitionErrors),
    /// The run store failed.
    #[error("run store: {0}")]
    Store(#[from] StoreError),
    /// Reading or writing asset data failed.
    #[error("warehouse: {0}")]
    Warehouse(#[from] WarehouseError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A query failed.
    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Execution needed more memory than `[limits] memory` allows.
    #[error("memory limit reached ({limit}, [limits] memory): {detail} — raise it in spine.toml or with SPINE_MEMORY_LIMIT, or make the query smaller")]
    MemoryLimit {
        /// The limit, for humans.
        limit: String,
        /// What DataFusion reported.
        detail: String,
    },
    /// Something that should not happen; please report it.
    #[error("internal error (please report this as a bug): {0}")]
    Internal(String),
}

impl EngineError {
    /// True when the cause is the user's input (maps to exit code 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            EngineError::Definition(_) => true,
            EngineError::Store(s) => s.is_user_error(),
            _ => false,
        }
    }
}

impl StoreError {
    /// True when the cause is the user's input, such as a run id that matches no run (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            StoreError::UnknownRun { .. } | StoreError::UnknownBackfill { .. }
        )
    }
}

/// The database's error, with what to do when it means the disk is full or cannot be written.
fn database_error(e: &sqlx::Error) -> String {
    if disk_full(e) {
        format!(
            "{e} — the disk holding the run store is full or cannot be written: free space and run \
             again (a run this leaves unfinished is recorded as failed by the next run)"
        )
    } else {
        e.to_string()
    }
}

/// Set once any store statement of this process failed on a full disk (see [`disk_full_seen`]).
static DISK_FULL_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a store statement of this process has failed on a full disk. A SQLite transaction that
/// fails so may stay open on its pooled connection, and statements there would then never commit
/// (seen: the next write on it reported success and was gone): the pool ends such transactions
/// before it hands a connection out again.
pub(crate) fn disk_full_seen() -> bool {
    DISK_FULL_SEEN.load(std::sync::atomic::Ordering::Relaxed)
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if disk_full(&e) {
            DISK_FULL_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        StoreError::Database(e)
    }
}

/// SQLite's SQLITE_FULL (13) or SQLITE_IOERR (10, any extended code), or an OS error ENOSPC.
pub(crate) fn disk_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 10 | 13)),
        sqlx::Error::Io(io) => io.raw_os_error() == Some(28),
        _ => false,
    }
}

impl StoreError {
    /// True when the store failed because its disk is full or cannot be written (retrying may help
    /// once space is freed; waiting for a lock will not).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Database(e) if disk_full(e))
    }
}

fn unknown_backfill(prefix: &str, candidates: &[String]) -> String {
    if candidates.is_empty() {
        return format!(
            "no backfill has the id or prefix '{prefix}' (`assets backfills` lists them)"
        );
    }
    format!(
        "the prefix '{prefix}' matches several backfills; give more of the id:\n  {}",
        candidates.join("\n  ")
    )
}

fn unknown_run(prefix: &str, candidates: &[String]) -> String {
    if candidates.is_empty() {
        return format!("no run has the id or prefix '{prefix}' (`assets runs` lists them)");
    }
    let more = if candidates.len() > 10 { "\n  …" } else { "" };
    let list: Vec<String> = candidates
        .iter()
        .take(10)
        .map(|c| format!("\n  {c}"))
        .collect();
    format!(
        "run prefix '{prefix}' is ambiguous; it matches:{}{more}\ntype more of the id",
        list.concat()
    )
}

impl From<DefinitionError> for EngineError {
    fn from(e: DefinitionError) -> Self {
        EngineError::Definition(e.into())
    }
}

/// Run-store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("{}", database_error(.0))]
    Database(sqlx::Error),
    /// Schema migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The state URL is not supported.
    #[error("unsupported state URL '{0}': use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    /// A record was not found.
    #[error("{0} not found")]
    NotFound(String),
    /// No run, or more than one, matches the id or prefix the user gave.
    #[error("{}", unknown_run(prefix, candidates))]
    UnknownRun {
        /// What the user typed.
        prefix: String,
        /// Matching runs (id, status, created), at most 11.
        candidates: Vec<String>,
    },
    /// No backfill, or more than one, matches the id or prefix the user gave.
    #[error("{}", unknown_backfill(prefix, candidates))]
    UnknownBackfill {
        /// What the user typed.
        prefix: String,
        /// Matching backfills (id, created), at most 11.
        candidates: Vec<String>,
    },
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Warehouse (Delta/Parquet) failures.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// Delta Lake failed.
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    /// Delta kernel failed.
    #[error("delta kernel: {0}")]
    Kernel(#[from] deltalake::kernel::Error),
    /// Object store failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// Parquet writing failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// DataFusion failed.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A table could not be read.
    #[error("cannot read the Delta table {table} at {version}: {detail} (`assets doctor` checks and repairs tables)")]
    Read {
        /// The table's location.
        table: String,
        /// Which version was read.
        version: String,
        /// Delta's message.
        detail: String,
    },
    /// The warehouse URL is invalid.
    #[error("invalid warehouse URL '{0}'")]
    BadUrl(String),
    /// Output files of a command asset are unusable.
    #[error("{0}")]
    BadOutput(String),
    /// The warehouse cannot do this (yet).
    #[error("{0}")]
    Unsupported(String),
}

impl WarehouseError {
    /// Whether a commit that failed with this may succeed on another attempt: it lost a race to a
    /// concurrent writer (a version taken, a conflict), or the store failed for now. Not: a table
    /// whose protocol, features, schema or partitioning the commit cannot satisfy, unusable output,
    /// something unsupported, a damaged table.
    pub fn is_transient_commit_failure(&self) -> bool {
        use deltalake::kernel::transaction::TransactionError as T;
        use deltalake::DeltaTableError as D;
        match self {
            WarehouseError::Delta(D::Transaction { source }) => matches!(
                source,
                T::VersionAlreadyExists(_)
                    | T::CommitConflict(_)
                    | T::MaxCommitAttempts(_)
                    | T::ObjectStore { .. }
            ),
            WarehouseError::Delta(
                D::VersionAlreadyExists(_)
                | D::VersionMismatch(..)
                | D::ObjectStore { .. }
                | D::Io { .. },
            ) => true,
            WarehouseError::ObjectStore(_) => true,
            WarehouseError::Delta(_)
            | WarehouseError::Kernel(_)
            | WarehouseError::Unsupported(_)
            | WarehouseError::BadOutput(_)
            | WarehouseError::BadUrl(_)
            | WarehouseError::Arrow(_) => false,
            other => !other.is_damage(),
        }
    }

    /// Whether the table itself is damaged, so another attempt would fail the same way: a commit
    /// file that is not valid JSON (truncated, overwritten), a file its log names that is gone. A
    /// store that cannot be reached is not (that may pass).
    pub fn is_damage(&self) -> bool {
        const DAMAGE: [&str; 6] = [
            "Json error",
            "Truncated record",
            "EOF while parsing",
            "expected value at line",
            "No such file or directory",
            "Object at location",
        ];
        let text = self.to_string();
        DAMAGE.iter().any(|m| text.contains(m))
    }
}

impl std::error::Error for DefinitionError {}

/// What to do when an object store's error says it has no credentials, or refused them: such a
/// failure repeats on every attempt. `None` for other errors.
pub fn credentials_failure(message: &str) -> Option<&'static str> {
    if message.contains("169.254.169.254") || message.contains("NoCredentialProviders") {
        return Some(
            "no S3 credentials were found (the instance metadata service answered instead): set \
             aws_access_key_id and aws_secret_access_key in [warehouse.options], or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        );
    }
    [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    ]
    .iter()
    .any(|m| message.contains(m))
    .then_some("the S3 credentials were refused: check the key id, secret and session token")
}

/// The first line of a message (a library error's detail without its backtrace or cause chain), for
/// errors that name a file, table or query and then say what went wrong in one line.
pub(crate) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
