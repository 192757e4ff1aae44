//! The warehouse: one Delta table per asset at `<warehouse>/<asset key>/`.
//!
//! Writing streams record batches into a Parquet file inside the table folder (invisible until committed),
//! hashing them for the data version as they pass, then commits the file in one Delta transaction that
//! replaces the table's previous contents. The commit carries the step's application transaction
//! (`txn`: app id = asset key, version = materialization sequence number) and commit-info metadata (run,
//! step, code version, upstream versions), so a crashed step can later tell whether its commit landed.

use crate::encode::{blocking, LocalFileWriter, ParallelParquetWriter};
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
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::DeltaOperation;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use parquet::arrow::async_writer::{AsyncArrowWriter, AsyncFileWriter};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::sync::Arc;
use url::Url;

mod cast;

pub use cast::delta_compatible;
use cast::{cast_batch, next_rows};

/// Outputs up to this size stay in memory for downstream steps of the same run (no re-read).
const KEEP_IN_MEMORY_BYTES: usize = 8 * 1024 * 1024;

/// Where the tables live and how to reach them.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    options: HashMap<String, String>,
    fsync: bool,
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
}

/// What a materialization's commit replaces in its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// The whole table: the staged files become its only live files (an unpartitioned asset).
    Table,
    /// The rows of one partition: its live files are replaced, other partitions' files stay. Partition
    /// writes arrive with partitioned assets; until then `commit` refuses them.
    Partition(PartitionKey),
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

impl Warehouse {
    /// A warehouse rooted at `root` (a directory URL ending in `/`).
    pub fn new(root: Url, options: HashMap<String, String>) -> Result<Self, WarehouseError> {
        if root.scheme() == "file" && root.to_file_path().is_err() {
            return Err(WarehouseError::BadUrl(root.to_string()));
        }
        Ok(Warehouse {
            root,
            options,
            fsync: true,
        })
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
    async fn sync_commit(&self, key: &AssetKey, version: i64) -> Result<(), WarehouseError> {
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
    fn local_dir(&self, key: &AssetKey) -> Option<std::path::PathBuf> {
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

    /// Finds the commit that carried sequence number `seq` for `app_id` (as its `txn`): returns its Delta
    /// version and the `spine` commit info, or `None` when that commit never landed.
    pub async fn find_commit(
        &self,
        key: &AssetKey,
        app_id: &str,
        seq: i64,
    ) -> Result<Option<(i64, serde_json::Value)>, WarehouseError> {
        let Some(table) = self.open(key, None).await? else {
            return Ok(None);
        };
        let txn = table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?;
        if txn != Some(seq) {
            return Ok(None);
        }
        let latest = table.version().map(|v| v as i64).unwrap_or(0);
        let mut history = table.history(Some(50));
        let mut offset = 0i64;
        while let Some(info) = history.next().await {
            let info = info?;
            if let Some(spine) = info.info.get("spine") {
                if spine.get("seq").and_then(|v| v.as_i64()) == Some(seq) {
                    return Ok(Some((latest - offset, spine.clone())));
                }
            }
            offset += 1;
        }
        Ok(None)
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

    /// Streams `input` into a new Parquet file in the table folder, hashing as it goes. Nothing is
    /// visible until [`Warehouse::commit`]; an abandoned file is unreferenced and removed by vacuum.
    ///
    /// Results up to [`KEEP_IN_MEMORY_BYTES`] are hashed and encoded in line and kept for downstream
    /// steps. Larger ones are encoded with one task per column ([`ParallelParquetWriter`]) while a
    /// separate task hashes, so writing keeps up with a query running on several cores.
    pub async fn stage(
        &self,
        key: &AssetKey,
        mut input: SendableRecordBatchStream,
    ) -> Result<Staged, WarehouseError> {
        let table = self.table_handle(key)?;
        let store = table.log_store().object_store(None);
        let (schema, needs_cast) = delta_compatible(&input.schema());
        let file_name = format!("part-00000-{}-c000.snappy.parquet", uuid::Uuid::now_v7());
        let path = ObjPath::from(file_name.as_str());
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let prepare = |batch: RecordBatch| -> Result<RecordBatch, WarehouseError> {
            if needs_cast {
                cast_batch(&batch, &schema)
            } else {
                Ok(batch)
            }
        };
        let mut rows: i64 = 0;
        let mut kept: Vec<RecordBatch> = Vec::new();
        let mut kept_bytes = 0usize;
        let mut overflow: Option<RecordBatch> = None;
        while let Some(batch) = next_rows(&mut input, &prepare).await? {
            rows += batch.num_rows() as i64;
            kept_bytes += batch.get_array_memory_size();
            if kept_bytes > KEEP_IN_MEMORY_BYTES {
                overflow = Some(batch);
                break;
            }
            kept.push(batch);
        }
        let (batches, data_version, wrote) = match overflow {
            None => {
                let mut hasher = DataHasher::new(schema.clone());
                for batch in &kept {
                    hasher.update(batch)?;
                }
                if rows > 0 {
                    let out = self.data_file_writer(key, &store, &path, &file_name)?;
                    let mut writer = AsyncArrowWriter::try_new(out, schema.clone(), Some(props))?;
                    for batch in &kept {
                        writer.write(batch).await?;
                    }
                    writer.close().await?;
                }
                (Some(kept), hasher.finish(), rows > 0)
            }
            Some(first_over) => {
                let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
                let hash_schema = schema.clone();
                let hashing = tokio::spawn(async move {
                    let mut hasher = DataHasher::new(hash_schema);
                    while let Some(batch) = hash_rx.recv().await {
                        hasher.update(&batch)?;
                    }
                    Ok::<_, arrow::error::ArrowError>(hasher.finish())
                });
                let out = self.data_file_writer(key, &store, &path, &file_name)?;
                let mut writer = ParallelParquetWriter::try_new(out, schema.clone(), props)?;
                let mut pending = kept.into_iter().chain(std::iter::once(first_over));
                loop {
                    let batch = match pending.next() {
                        Some(batch) => batch,
                        None => match next_rows(&mut input, &prepare).await? {
                            Some(batch) => {
                                rows += batch.num_rows() as i64;
                                batch
                            }
                            None => break,
                        },
                    };
                    // A closed channel means the hashing task failed; its error is reported below.
                    let _ = hash_tx.send(batch.clone()).await;
                    writer.write(&batch).await?;
                }
                drop(hash_tx);
                writer.close().await?;
                let version = hashing.await.map_err(|e| {
                    WarehouseError::BadOutput(format!("hashing {key} failed: {e}"))
                })??;
                (None, version, true)
            }
        };
        let mut actions = Vec::new();
        if wrote {
            let size = match self.local_dir(key) {
                Some(dir) => std::fs::metadata(dir.join(&file_name))
                    .map_err(|e| {
                        WarehouseError::BadOutput(format!("cannot stat {file_name}: {e}"))
                    })?
                    .len(),
                None => store.head(&path).await?.size,
            };
            actions.push(Action::Add(Add {
                path: file_name,
                partition_values: HashMap::new(),
                size: size as i64,
                modification_time: chrono::Utc::now().timestamp_millis(),
                data_change: true,
                stats: Some(serde_json::json!({ "numRecords": rows }).to_string()),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
                clustering_provider: None,
            }));
        }
        Ok(Staged {
            actions,
            batches,
            row_count: rows,
            data_version,
            schema,
        })
    }

    /// Commits staged files as the new content of `meta.scope` (today: the whole table), in one Delta
    /// transaction carrying the step's `txn` and commit info. Returns the Delta version produced.
    pub async fn commit(
        &self,
        key: &AssetKey,
        staged: Staged,
        meta: CommitMeta,
    ) -> Result<i64, WarehouseError> {
        if let WriteScope::Partition(p) = &meta.scope {
            return Err(WarehouseError::Unsupported(format!(
                "{key}[{p}]: partition writes are not supported yet (partitioned assets arrive with partitions and backfills)"
            )));
        }
        let table = self.table_handle(key)?;
        let columns: StructType = staged.schema.as_ref().try_into_kernel()?;
        if !self.is_table(key, &table).await? {
            match self
                .commit_new_table(key, &table, &columns, &staged, &meta)
                .await
            {
                Ok(()) => {
                    self.sync_commit(key, 0).await?;
                    return Ok(0);
                }
                // Another writer created the table meanwhile: fall through to replace it.
                Err(WarehouseError::Delta(deltalake::DeltaTableError::VersionAlreadyExists(_))) => {
                }
                Err(e) => return Err(e),
            }
        }
        let props = CommitProperties::default()
            .with_metadata([("spine".to_string(), meta.info)])
            .with_application_transaction(Transaction::new(&meta.app_id, meta.seq));
        // Create-or-replace in one commit: new schema, the new file, and removes of every live file.
        let committed = table
            .create()
            .with_save_mode(SaveMode::Overwrite)
            .with_table_name(key.name())
            .with_columns(columns.fields().cloned())
            .with_actions(staged.actions)
            .with_commit_properties(props)
            .await?;
        let version = committed.version().map(|v| v as i64).unwrap_or(0);
        self.sync_commit(key, version).await?;
        Ok(version)
    }
}

impl Warehouse {
    /// Creates a table with its first data in one commit (version 0): the same actions delta-rs writes
    /// for CREATE TABLE, serialized by delta-rs, written with the log store's atomic put-if-absent,
    /// without the snapshot reloads of the general path.
    async fn commit_new_table(
        &self,
        key: &AssetKey,
        table: &DeltaTable,
        columns: &StructType,
        staged: &Staged,
        meta: &CommitMeta,
    ) -> Result<(), WarehouseError> {
        let log_store = table.log_store();
        let metadata = deltalake::kernel::new_metadata(
            columns,
            Vec::<String>::new(),
            Vec::<(String, String)>::new(),
        )?
        .with_name(key.name().to_string())?;
        let protocol = match serde_json::from_value::<Action>(
            serde_json::json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
        ) {
            Ok(Action::Protocol(p)) => p,
            _ => {
                return Err(WarehouseError::BadOutput(
                    "internal: cannot build a Delta protocol action".into(),
                ))
            }
        };
        let operation = DeltaOperation::Create {
            mode: SaveMode::ErrorIfExists,
            location: self.table_url(key)?,
            protocol: protocol.clone(),
            metadata: metadata.clone(),
        };
        let mut actions = vec![Action::Protocol(protocol), Action::Metadata(metadata)];
        actions.extend(staged.actions.iter().cloned());
        let app = HashMap::from([("spine".to_string(), meta.info.clone())]);
        let txn = vec![Transaction::new(&meta.app_id, meta.seq)];
        let bytes = CommitData::new(actions, operation, app, txn)
            .get_bytes()
            .map_err(|e| WarehouseError::Delta(e.into()))?;
        log_store
            .write_commit_entry(0, CommitOrBytes::LogBytes(bytes), uuid::Uuid::new_v4())
            .await
            .map_err(|e| WarehouseError::Delta(e.into()))?;
        Ok(())
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
