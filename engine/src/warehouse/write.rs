//! Writing a materialization: staging its rows as Parquet files nobody references yet, then one Delta
//! commit that makes them the table's (or one partition's) content.

use super::*;

impl Warehouse {
    /// Streams `input` into a new Parquet file in the table folder, hashing as it goes. Nothing is
    /// visible until [`Warehouse::commit`]; an abandoned file is unreferenced and removed by vacuum.
    ///
    /// Results up to [`KEEP_IN_MEMORY_BYTES`] are hashed and encoded in line and kept for downstream
    /// steps. Larger ones are encoded with one task per column ([`ParallelParquetWriter`]) while a
    /// separate task hashes, so writing keeps up with a query running on several cores.
    ///
    /// For a write of one partition (`scope` is [`WriteScope::Partition`]) the partition column is not
    /// stored in the file (Delta keeps it in the log): rows that carry it must all hold the partition's
    /// key, and the staged schema ends with it.
    ///
    /// A write that fails (a full disk, a query error mid-stream) removes the file it began, so a full
    /// disk has room again for the run store to record the failure.
    pub async fn stage(
        &self,
        key: &AssetKey,
        input: SendableRecordBatchStream,
        scope: &WriteScope,
    ) -> Result<Staged, WarehouseError> {
        let table = self.table_handle(key)?;
        let store = table.log_store().object_store(None);
        let file_name = format!("part-00000-{}-c000.zstd.parquet", uuid::Uuid::now_v7());
        let staged = self
            .stage_file(key, input, scope, &store, file_name.clone())
            .await;
        if staged.is_err() {
            if let Err(e) = store.delete(&ObjPath::from(file_name.as_str())).await {
                if !matches!(e, object_store::Error::NotFound { .. }) {
                    tracing::warn!(
                        "cannot remove the unfinished data file {file_name} of {key}: {e}"
                    );
                }
            }
        }
        staged
    }

    async fn stage_file(
        &self,
        key: &AssetKey,
        mut input: SendableRecordBatchStream,
        scope: &WriteScope,
        store: &Arc<dyn object_store::ObjectStore>,
        file_name: String,
    ) -> Result<Staged, WarehouseError> {
        let (full, needs_cast) = delta_compatible(&input.schema());
        let partition: &[(String, String)] = match scope {
            WriteScope::Table | WriteScope::Append | WriteScope::Merge { .. } => &[],
            WriteScope::Partition { values, .. } => values,
        };
        let schema = without_columns(&full, partition);
        let path = ObjPath::from(file_name.as_str());
        let props = writer_properties();
        let prepare = |batch: RecordBatch| -> Result<RecordBatch, WarehouseError> {
            let batch = if needs_cast {
                cast_batch(&batch, &full)?
            } else {
                batch
            };
            split_partition(key, batch, partition)
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
        let (batches, (data_version, file_stats), wrote) = match overflow {
            None => {
                let mut hasher = DataHasher::new(schema.clone());
                let mut file_stats = FileStats::new(schema.clone());
                for batch in &kept {
                    hasher.update(batch)?;
                    file_stats.update(batch);
                }
                if rows > 0 {
                    let out = self.data_file_writer(key, store, &path, &file_name)?;
                    let mut writer = AsyncArrowWriter::try_new(out, schema.clone(), Some(props))?;
                    for batch in &kept {
                        writer.write(batch).await?;
                    }
                    writer.close().await?;
                }
                (Some(kept), (hasher.finish(), file_stats.finish()), rows > 0)
            }
            Some(first_over) => {
                let (hash_tx, mut hash_rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
                let hash_schema = schema.clone();
                // One task hashes and gathers the column statistics while the writer encodes.
                let hashing = tokio::spawn(async move {
                    let mut hasher = DataHasher::new(hash_schema.clone());
                    let mut file_stats = FileStats::new(hash_schema);
                    while let Some(batch) = hash_rx.recv().await {
                        hasher.update(&batch)?;
                        file_stats.update(&batch);
                    }
                    Ok::<_, arrow::error::ArrowError>((hasher.finish(), file_stats.finish()))
                });
                let out = self.data_file_writer(key, store, &path, &file_name)?;
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
                partition_values: partition
                    .iter()
                    .map(|(c, v)| (c.clone(), Some(v.clone())))
                    .collect(),
                size: size as i64,
                modification_time: self.clock.now_ms(),
                data_change: true,
                stats: Some(file_stats.to_string()),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
                clustering_provider: None,
            }));
        }
        // The table's schema: the partition columns (strings in the log) come last.
        let schema = if partition.is_empty() {
            schema
        } else {
            let mut fields: Vec<Field> =
                schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            for (column, _) in partition {
                fields.push(Field::new(column, DataType::Utf8, true));
            }
            Arc::new(Schema::new(fields))
        };
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
        let table = self.table_handle(key)?;
        let columns: StructType = staged.schema.as_ref().try_into_kernel()?;
        let partition_columns: Vec<String> = match &meta.scope {
            WriteScope::Table | WriteScope::Append | WriteScope::Merge { .. } => Vec::new(),
            WriteScope::Partition { values, .. } => values.iter().map(|(c, _)| c.clone()).collect(),
        };
        if !self.is_table(key, &table).await? {
            match self
                .commit_new_table(key, &table, &columns, &partition_columns, &staged, &meta)
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
        if let WriteScope::Partition { .. } = &meta.scope {
            // Durable (synced) before it returns.
            return self
                .commit_partition(key, table, columns, staged, meta)
                .await;
        }
        match &meta.scope {
            WriteScope::Append => {
                return self
                    .commit_append(key, table, &columns, staged, meta, &[])
                    .await
            }
            WriteScope::Merge { remove } => {
                let remove = remove.clone();
                return self
                    .commit_append(key, table, &columns, staged, meta, &remove)
                    .await;
            }
            _ => {}
        }
        let props = CommitProperties::default()
            .with_metadata([("spine".to_string(), meta.info)])
            .with_application_transaction(Transaction::new(&meta.app_id, meta.seq));
        // Create-or-replace in one commit: new schema, the new file, and removes of every live file.
        let mut create = table
            .create()
            .with_save_mode(SaveMode::Overwrite)
            .with_table_name(key.name())
            .with_raise_if_key_not_exists(false)
            .with_configuration(meta.table.properties.iter().map(|(k, v)| (k, Some(v))));
        if let Some(d) = &meta.table.description {
            create = create.with_comment(d);
        }
        let committed = create
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
    /// Adds the staged files to the table and removes the live files `remove` names (a merge; none for
    /// an append), in one commit with the step's `txn`; a changed schema (added columns) goes in the
    /// same commit. A file of `remove` that is no longer live fails the commit (another writer changed
    /// the table since the merge read it).
    async fn commit_append(
        &self,
        key: &AssetKey,
        mut table: DeltaTable,
        columns: &StructType,
        staged: Staged,
        meta: CommitMeta,
        remove: &[String],
    ) -> Result<i64, WarehouseError> {
        table.load().await?;
        let snapshot = table.snapshot()?;
        let mut actions = Vec::new();
        let mut missing: std::collections::BTreeSet<&str> =
            remove.iter().map(String::as_str).collect();
        if !missing.is_empty() {
            for f in snapshot.log_data().iter() {
                let path = f.path();
                if let Some(r) = remove.iter().find(|r| same_file(r, &path)) {
                    missing.remove(r.as_str());
                    actions.push(Action::Remove(f.remove_action(true)));
                }
            }
        }
        if let Some(m) = missing.first() {
            return Err(WarehouseError::BadOutput(format!(
                "the merge read file {m} of {key}, which is no longer in the table (another writer changed it); run again"
            )));
        }
        if let Some(m) =
            meta.table
                .next_metadata(snapshot.metadata(), snapshot.schema().as_ref(), columns)?
        {
            actions.push(Action::Metadata(m));
        }
        actions.extend(staged.actions);
        let operation = match &meta.scope {
            WriteScope::Merge { .. } => DeltaOperation::Merge {
                predicate: None,
                merge_predicate: meta
                    .info
                    .pointer("/metadata/merge_key")
                    .and_then(|k| k.as_array())
                    .map(|k| {
                        k.iter()
                            .filter_map(|c| c.as_str())
                            .map(|c| format!("target.`{c}` = source.`{c}`"))
                            .collect::<Vec<_>>()
                            .join(" AND ")
                    }),
                matched_predicates: Vec::new(),
                not_matched_predicates: Vec::new(),
                not_matched_by_source_predicates: Vec::new(),
            },
            _ => DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        };
        let props = CommitProperties::default()
            .with_metadata([("spine".to_string(), meta.info)])
            .with_application_transaction(Transaction::new(&meta.app_id, meta.seq));
        let done = deltalake::kernel::transaction::CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await?;
        let version = done.version() as i64;
        self.sync_commit(key, version).await?;
        Ok(version)
    }

    /// Creates a table with its first data in one commit (version 0): the same actions delta-rs writes
    /// for CREATE TABLE, serialized by delta-rs, written with the log store's atomic put-if-absent,
    /// without the snapshot reloads of the general path.
    async fn commit_new_table(
        &self,
        key: &AssetKey,
        table: &DeltaTable,
        columns: &StructType,
        partition_columns: &[String],
        staged: &Staged,
        meta: &CommitMeta,
    ) -> Result<(), WarehouseError> {
        let log_store = table.log_store();
        let mut metadata = deltalake::kernel::new_metadata(
            columns,
            partition_columns.to_vec(),
            meta.table.properties.iter(),
        )?
        .with_name(key.name().to_string())?;
        if let Some(d) = &meta.table.description {
            metadata = metadata.with_description(d.clone())?;
        }
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

/// Whether a file column value (a path or URL) names the table-relative `path`.
fn same_file(value: &str, path: &str) -> bool {
    value == path || value.ends_with(&format!("/{path}"))
}

/// `schema` without the partition columns.
fn without_columns(schema: &SchemaRef, partition: &[(String, String)]) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| !partition.iter().any(|(c, _)| c == f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new(fields))
}

/// Drops the partition columns from a batch of one partition's rows, after checking that every row
/// holds the partition's value in each (a row of another partition would be written into the wrong
/// one).
fn split_partition(
    key: &AssetKey,
    mut batch: RecordBatch,
    partition: &[(String, String)],
) -> Result<RecordBatch, WarehouseError> {
    use arrow::array::Array;
    for (column, value) in partition {
        let Ok(i) = batch.schema().index_of(column) else {
            continue;
        };
        let values = arrow::compute::cast(batch.column(i), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        for r in 0..values.len() {
            if values.is_null(r) || values.value(r) != value.as_str() {
                let got = if values.is_null(r) {
                    "NULL".to_string()
                } else {
                    format!("'{}'", values.value(r))
                };
                return Err(WarehouseError::BadOutput(format!(
                    "{key}: row {r} has {column} = {got}, not the partition's key '{value}'; a \
                     partition's rows must all belong to it (or leave the column out: Spine sets it)"
                )));
            }
        }
        batch.remove_column(i);
    }
    Ok(batch)
}
