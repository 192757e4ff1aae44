//! The warehouse: one Delta table per asset at `<warehouse>/<asset key>/`.
//!
//! Writing streams record batches into a Parquet file inside the table folder (invisible until committed),
//! hashing them for the data version as they pass, then commits the file in one Delta transaction that
//! replaces the table's previous contents. The commit carries the step's application transaction
//! (`txn`: app id = asset key, version = materialization sequence number) and commit-info metadata (run,
//! step, code version, upstream versions), so a crashed step can later tell whether its commit landed.

use crate::encode::{blocking, LocalFileWriter, ParallelParquetWriter};
use crate::error::first_line;
use crate::error::WarehouseError;
use crate::hash::DataHasher;
use crate::key::{AssetKey, PartitionKey};
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::execution::SendableRecordBatchStream;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitData, CommitProperties};
use deltalake::kernel::MetadataExt;
use deltalake::kernel::{Action, Add, Metadata, StructType, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use parquet::arrow::async_writer::{AsyncArrowWriter, AsyncFileWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::sync::Arc;
use url::Url;

mod cast;
mod commit_info;
mod commits;
pub use commit_info::{CommitInfo, COMMIT_INFO_FORMAT};
mod open;
pub use open::missing_s3_credentials;
mod partitioned;
pub use partitioned::CommitIntent;
mod stats;
use stats::FileStats;
mod write;

pub use cast::delta_compatible;
use cast::{cast_batch, next_rows};

/// Parquet settings of every data file Spine writes: zstd at level 1 (files smaller than snappy's at
/// about its encoding speed; every Delta reader decodes it), row groups of up to 1M rows, page
/// statistics (parquet's default).
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1024 * 1024))
        .build()
}

/// Outputs up to this size stay in memory for downstream steps of the same run (no re-read).
const KEEP_IN_MEMORY_BYTES: usize = 8 * 1024 * 1024;

/// Where the tables live and how to reach them.
#[derive(Clone)]
pub struct Warehouse {
    root: Url,
    options: HashMap<String, String>,
    fsync: bool,
    /// The state of each partitioned table after this process's last commit to it (see
    /// `write::commit`), shared by clones.
    states: partitioned::TableStates,
    /// The time written into the log (data files' modification times).
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("root", &self.root.as_str())
            .field("fsync", &self.fsync)
            .finish_non_exhaustive()
    }
}

/// What a commit records besides the data.
#[derive(Debug, Clone)]
pub struct CommitMeta {
    /// Delta application-transaction id: the step key (`asset` or `asset[partition]`).
    pub app_id: String,
    /// Sequence number (the txn version).
    pub seq: i64,
    /// Commit-info metadata stored under `spine` in the commit.
    pub info: serde_json::Value,
    /// What the commit replaces.
    pub scope: WriteScope,
    /// What the table says about its asset (written when it changes).
    pub table: TableMeta,
}

/// What a table says about its asset, for every Delta reader: the description in Delta's own
/// `description` field, and `spine.*` table properties (asset key, owners, code version).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMeta {
    /// The asset's description.
    pub description: Option<String>,
    /// Table properties, each key starting with `spine.`.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl TableMeta {
    /// The table metadata of an asset.
    pub fn of(key: &AssetKey, description: Option<&str>, owners: &[String], code: &str) -> Self {
        let mut properties = std::collections::BTreeMap::new();
        properties.insert("spine.asset".to_string(), key.to_string());
        if !owners.is_empty() {
            properties.insert("spine.owners".to_string(), owners.join(","));
        }
        if !code.is_empty() {
            properties.insert("spine.codeVersion".to_string(), code.to_string());
        }
        TableMeta {
            description: description.map(str::to_string),
            properties,
        }
    }

    /// The metadata action a commit needs: `metadata` with `schema` (when it differs from
    /// `current_schema`) and with this description and these properties; `None` when nothing changes.
    fn next_metadata(
        &self,
        metadata: &Metadata,
        current_schema: &StructType,
        schema: &StructType,
    ) -> Result<Option<Metadata>, WarehouseError> {
        let evolved = (current_schema != schema)
            .then(|| metadata.clone().with_schema(schema))
            .transpose()?;
        let base = evolved.as_ref().unwrap_or(metadata);
        Ok(match self.apply(base)? {
            Some(m) => Some(m),
            None => evolved,
        })
    }

    /// `metadata` carrying this description and these properties (other tools' properties stay;
    /// `spine.*` ones this lacks go), or `None` when it already does.
    fn apply(&self, metadata: &Metadata) -> Result<Option<Metadata>, WarehouseError> {
        let config = metadata.configuration();
        let stale: Vec<&String> = config
            .keys()
            .filter(|k| k.starts_with("spine.") && !self.properties.contains_key(*k))
            .collect();
        let same = metadata.description() == self.description.as_deref()
            && stale.is_empty()
            && self
                .properties
                .iter()
                .all(|(k, v)| config.get(k) == Some(v));
        if same {
            return Ok(None);
        }
        let stale: Vec<String> = stale.into_iter().cloned().collect();
        let mut m = metadata.clone();
        if metadata.description() != self.description.as_deref() {
            m = m.with_description(self.description.clone().unwrap_or_default())?;
        }
        for k in &stale {
            m = m.remove_config_key(k)?;
        }
        for (k, v) in &self.properties {
            m = m.add_config_key(k.clone(), v.clone())?;
        }
        Ok(Some(m))
    }
}

/// What a materialization's commit replaces in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// The whole table: the staged files become its only live files (an unpartitioned asset).
    Table,
    /// Rows added to the table: its live files stay (an incremental asset's append).
    Append,
    /// A merge: the listed live files (paths relative to the table, as the file column of
    /// [`Warehouse::provider_with_files`] names them) are replaced by the staged files; the others stay.
    Merge {
        /// The files whose rows the staged files carry forward (minus the matched ones).
        remove: Vec<String>,
    },
    /// The rows of one partition: its live files are replaced, other partitions' files stay. The
    /// table is a Delta table partitioned by the columns of `values`, in that order.
    Partition {
        /// This partition's key.
        key: PartitionKey,
        /// Each Delta partition column with this partition's value in it (one per dimension).
        values: Vec<(String, String)>,
    },
}

/// Data files written for one materialization but not yet committed (invisible to readers).
#[derive(Debug, Clone)]
pub struct Staged {
    actions: Vec<Action>,
    /// The rows themselves when they are small enough to hand to downstream steps in memory.
    pub batches: Option<Vec<RecordBatch>>,
    /// Rows written.
    pub row_count: i64,
    /// Content hash.
    pub data_version: String,
    /// Schema written.
    pub schema: SchemaRef,
}

#[cfg(test)]
impl Staged {
    /// Staged output with no files, for tests of the stages that only read its figures.
    pub(crate) fn figures(row_count: i64, data_version: &str, schema: SchemaRef) -> Self {
        Staged {
            actions: Vec::new(),
            batches: None,
            row_count,
            data_version: data_version.to_string(),
            schema,
        }
    }
}

impl Warehouse {
    /// A warehouse rooted at `root` (a directory URL ending in `/`).
    pub fn new(root: Url, mut options: HashMap<String, String>) -> Result<Self, WarehouseError> {
        if root.scheme() == "file" && root.to_file_path().is_err() {
            return Err(WarehouseError::BadUrl(root.to_string()));
        }
        if root.scheme() != "file" {
            // Retries of transient failures (5xx, throttling, refused or reset connections) start at
            // half a second instead of object_store's 100 ms, so that its 10 retries span an outage of
            // tens of seconds rather than about two (still bounded by its 3-minute retry timeout).
            // Either key in [warehouse.options] overrides this.
            options
                .entry("backoff_config.init_backoff".to_string())
                .or_insert_with(|| "500ms".to_string());
        }
        Ok(Warehouse {
            root,
            options,
            fsync: true,
            states: Default::default(),
            clock: Arc::new(crate::clock::SystemClock),
        })
    }

    /// Reads the time from `clock` (the engine's; tests use a manual one).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets whether local writes are fsynced (default: yes).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// fsyncs `paths` (files or folders) of a local warehouse, off the async threads (see [`blocking`]).
    async fn sync_local(&self, paths: Vec<std::path::PathBuf>) -> Result<(), WarehouseError> {
        if !self.fsync || paths.is_empty() {
            return Ok(());
        }
        blocking(move || {
            for p in paths {
                std::fs::File::open(&p)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| WarehouseError::BadOutput(format!("fsync failed: {e}")))
    }

    /// Whether the asset has a Delta table (a local check avoids a listing through the blocking pool).
    async fn is_table(&self, key: &AssetKey, table: &DeltaTable) -> Result<bool, WarehouseError> {
        match self.local_dir(key) {
            Some(dir) => Ok(std::fs::read_dir(dir.join("_delta_log"))
                .map(|mut entries| {
                    entries.any(|e| {
                        e.is_ok_and(|e| {
                            let name = e.file_name();
                            let name = name.to_string_lossy();
                            name.ends_with(".json") || name.contains(".checkpoint")
                        })
                    })
                })
                .unwrap_or(false)),
            None => Ok(table.log_store().is_delta_table_location().await?),
        }
    }

    /// Makes a commit durable on a local disk: the commit file, the log folder and the table folder.
    pub(crate) async fn sync_commit(
        &self,
        key: &AssetKey,
        version: i64,
    ) -> Result<(), WarehouseError> {
        let Some(dir) = self.local_dir(key) else {
            return Ok(());
        };
        let log = dir.join("_delta_log");
        self.sync_local(vec![log.join(format!("{version:020}.json")), log, dir])
            .await
    }

    /// The warehouse root.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The table URL of an asset.
    pub fn table_url(&self, key: &AssetKey) -> Result<Url, WarehouseError> {
        self.root
            .join(&format!("{}/", key.as_str()))
            .map_err(|_| WarehouseError::BadUrl(key.to_string()))
    }

    /// The local folder of an asset's table, for `file://` warehouses.
    pub(crate) fn local_dir(&self, key: &AssetKey) -> Option<std::path::PathBuf> {
        self.table_url(key)
            .ok()
            .filter(|u| u.scheme() == "file")
            .and_then(|u| u.to_file_path().ok())
    }

    fn table_handle(&self, key: &AssetKey) -> Result<DeltaTable, WarehouseError> {
        if let Some(dir) = self.local_dir(key).filter(|d| !d.is_dir()) {
            std::fs::create_dir_all(&dir).map_err(|e| {
                WarehouseError::BadOutput(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        Ok(DeltaTableBuilder::from_url(self.table_url(key)?)?
            .with_storage_options(self.options.clone())
            .build()?)
    }

    /// Opens an asset's table at its latest version (or `version`); `None` if it has no table yet.
    pub async fn open(
        &self,
        key: &AssetKey,
        version: Option<i64>,
    ) -> Result<Option<DeltaTable>, WarehouseError> {
        if self
            .local_dir(key)
            .is_some_and(|d| !d.join("_delta_log").is_dir())
        {
            return Ok(None);
        }
        let mut table = self.table_handle(key)?;
        if !table.log_store().is_delta_table_location().await? {
            return Ok(None);
        }
        let loaded = match version {
            Some(v) => table.load_version(v.max(0) as u64).await,
            None => table.load().await,
        };
        // Name the table, the version and (where Delta says) the file, without a backtrace.
        loaded.map_err(|e| WarehouseError::Read {
            table: self
                .table_url(key)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| key.to_string()),
            version: version.map_or("the latest version".into(), |v| format!("version {v}")),
            detail: first_line(&e.to_string()),
        })?;
        Ok(Some(table))
    }

    /// The commit files of an asset's table (`_delta_log/NNN.json`), by version, for a local warehouse.
    pub fn local_commit_files(&self, key: &AssetKey) -> Vec<(i64, std::path::PathBuf)> {
        let Some(dir) = self.local_dir(key).map(|d| d.join("_delta_log")) else {
            return Vec::new();
        };
        let mut out: Vec<(i64, std::path::PathBuf)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let p = e.path();
                        let v = p
                            .file_name()?
                            .to_str()?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()?;
                        Some((v, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The local folder of an asset's table, if the warehouse is local.
    pub fn local_table_dir(&self, key: &AssetKey) -> Option<std::path::PathBuf> {
        self.local_dir(key)
    }

    /// A DataFusion table provider for an asset at `version` (latest when `None`), with the version read.
    pub async fn provider(
        &self,
        key: &AssetKey,
        version: Option<i64>,
        session: &datafusion::prelude::SessionContext,
    ) -> Result<Option<(Arc<dyn TableProvider>, i64)>, WarehouseError> {
        let Some(table) = self.open(key, version).await? else {
            return Ok(None);
        };
        table.update_datafusion_session(&session.state())?;
        let v = table.version().map(|v| v as i64).unwrap_or(0);
        Ok(Some((table.table_provider().await?, v)))
    }

    /// A provider for `version` of an asset's table whose rows carry, in the extra column `column`,
    /// the data file they live in (a merge rewrites only the files its matched rows are in).
    pub async fn provider_with_files(
        &self,
        key: &AssetKey,
        version: i64,
        session: &datafusion::prelude::SessionContext,
        column: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>, WarehouseError> {
        let Some(table) = self.open(key, Some(version)).await? else {
            return Ok(None);
        };
        table.update_datafusion_session(&session.state())?;
        Ok(Some(table.table_provider().with_file_column(column).await?))
    }

    /// The data files that make up `version` of an asset's table, as URLs (`file://` for a local
    /// warehouse). A table's folder also holds the files of earlier versions until they are vacuumed, so
    /// globbing the folder reads old rows too; this list is exact.
    pub async fn data_files(
        &self,
        key: &AssetKey,
        version: i64,
    ) -> Result<Vec<Url>, WarehouseError> {
        let Some(table) = self.open(key, Some(version)).await? else {
            return Ok(Vec::new());
        };
        let uris: Vec<String> = table.get_file_uris()?.collect();
        uris.into_iter()
            .map(|u| match Url::parse(&u) {
                Ok(url) => Ok(url),
                // Local tables list percent-encoded paths without a scheme.
                Err(_) => Url::parse(&format!("file://{u}")).map_err(|_| WarehouseError::BadUrl(u)),
            })
            .collect()
    }

    /// The latest committed txn version for `app_id` in the asset's table.
    pub async fn txn_version(
        &self,
        key: &AssetKey,
        app_id: &str,
    ) -> Result<Option<i64>, WarehouseError> {
        let Some(table) = self.open(key, None).await? else {
            return Ok(None);
        };
        Ok(table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?)
    }

    /// Where a staged data file is written: directly to the file of a local warehouse (flushed
    /// while written and fsynced when complete, unless `fsync` is off), through the object store's
    /// multipart upload elsewhere.
    fn data_file_writer(
        &self,
        key: &AssetKey,
        store: &Arc<dyn object_store::ObjectStore>,
        path: &ObjPath,
        file_name: &str,
    ) -> Result<Box<dyn AsyncFileWriter>, WarehouseError> {
        Ok(match self.local_dir(key) {
            Some(dir) => Box::new(
                LocalFileWriter::create(&dir.join(file_name), self.fsync).map_err(|e| {
                    WarehouseError::BadOutput(format!(
                        "cannot create {}: {e}",
                        dir.join(file_name).display()
                    ))
                })?,
            ),
            None => Box::new(BufWriter::new(store.clone(), path.clone())),
        })
    }
}
