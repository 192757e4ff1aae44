//! Committing one partition of a partitioned table, at a cost that stays flat as the table's log grows.
//!
//! A partition's commit removes that partition's live files and adds the new ones, with the step's
//! `txn`. Asking delta-rs to prepare each commit replays log files and re-materializes the table's file
//! list every time (~40 ms and tens of MiB per commit at a few hundred versions). Instead this process
//! remembers, per table, what it knows after its own last commit — the version, the metadata, the live
//! files of each partition — and writes the next version itself with the log store's atomic
//! put-if-absent (as delta-rs's own writers do). When another writer got there first (the version
//! exists), it falls back to delta-rs's commit, which reads their commits and checks for conflicts, and
//! forgets what it knew. A checkpoint is written every [`CHECKPOINT_EVERY`] versions so readers replay
//! at most that many JSON files.

use super::*;
use deltalake::kernel::{Metadata, Remove};
use deltalake::table::state::DeltaTableState;

/// Versions between checkpoints (Delta's default interval).
const CHECKPOINT_EVERY: i64 = 100;

/// What this process knows of a partitioned table after its last commit to it.
pub(super) struct Known {
    version: i64,
    metadata: Metadata,
    schema: StructType,
    /// Live files of each partition (by partition value), as the removes that would replace them.
    files: HashMap<String, Vec<Remove>>,
}

impl Known {
    fn from_state(state: &DeltaTableState, column: &str) -> Self {
        let mut files: HashMap<String, Vec<Remove>> = HashMap::new();
        for f in state.log_data().iter() {
            let value = f
                .partition_values_map()
                .get(column)
                .cloned()
                .flatten()
                .unwrap_or_default();
            files.entry(value).or_default().push(f.remove_action(true));
        }
        Known {
            version: state.version() as i64,
            metadata: state.metadata().clone(),
            schema: state.schema().as_ref().clone(),
            files,
        }
    }
}

/// What is known of one table, locked while a commit to it is prepared and written.
type Slot = Arc<tokio::sync::Mutex<Option<Known>>>;

/// One slot per partitioned table, shared by clones of the warehouse: commits of one table from this
/// process go one at a time, each starting from what the previous one left.
#[derive(Clone, Default)]
pub(super) struct TableStates(Arc<std::sync::Mutex<HashMap<AssetKey, Slot>>>);

impl std::fmt::Debug for TableStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableStates")
    }
}

impl TableStates {
    fn slot(&self, key: &AssetKey) -> Slot {
        self.0
            .lock()
            .expect("table states lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }
}

/// The remove action that will replace a file this process added.
fn removal(add: &Add, now_ms: i64) -> Remove {
    Remove {
        path: add.path.clone(),
        data_change: true,
        deletion_timestamp: Some(now_ms),
        extended_file_metadata: Some(true),
        partition_values: Some(add.partition_values.clone()),
        size: Some(add.size),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    }
}

impl Warehouse {
    /// Replaces partition `value` of `key`'s table (partitioned by `column`) with the staged files in
    /// one commit. Returns the version written.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn commit_partition(
        &self,
        key: &AssetKey,
        mut table: DeltaTable,
        columns: &StructType,
        column: &str,
        value: &PartitionKey,
        staged: Staged,
        meta: &CommitMeta,
    ) -> Result<i64, WarehouseError> {
        let slot = self.states.slot(key);
        let mut cached = slot.lock().await;
        let mut known = match cached.take() {
            Some(known) => known,
            None => {
                table.load().await?;
                Known::from_state(table.snapshot()?, column)
            }
        };
        let partitioned_by: Vec<String> = known.metadata.partition_columns().to_vec();
        if partitioned_by != [column.to_string()] {
            return Err(WarehouseError::Unsupported(format!(
                "the table of {key} is partitioned by [{}], not by '{column}' as its definition says; \
                 a table keeps its partition column: move the table's folder aside and materialize the \
                 partitions again",
                partitioned_by.join(", ")
            )));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut actions = Vec::new();
        let new_metadata = if &known.schema != columns {
            let m = known.metadata.clone().with_schema(columns)?;
            actions.push(Action::Metadata(m.clone()));
            Some(m)
        } else {
            None
        };
        for mut r in known.files.get(value.as_str()).cloned().unwrap_or_default() {
            r.deletion_timestamp = Some(now_ms);
            actions.push(Action::Remove(r));
        }
        let added: Vec<Remove> = staged
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Add(add) => Some(removal(add, now_ms)),
                _ => None,
            })
            .collect();
        actions.extend(staged.actions);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![column.to_string()]),
            predicate: Some(format!("{column} = '{value}'")),
        };
        let app = HashMap::from([("spine".to_string(), meta.info.clone())]);
        let txn = vec![Transaction::new(&meta.app_id, meta.seq)];
        let version = known.version + 1;
        let bytes = CommitData::new(actions.clone(), operation.clone(), app, txn.clone())
            .get_bytes()
            .map_err(|e| WarehouseError::Delta(e.into()))?;
        let written = table
            .log_store()
            .write_commit_entry(
                version as u64,
                CommitOrBytes::LogBytes(bytes),
                uuid::Uuid::new_v4(),
            )
            .await
            .map_err(|e| WarehouseError::Delta(e.into()));
        match written {
            Ok(()) => {
                known.version = version;
                known.files.insert(value.0.clone(), added);
                if let Some(m) = new_metadata {
                    known.metadata = m;
                    known.schema = columns.clone();
                }
                *cached = Some(known);
                drop(cached);
                if version % CHECKPOINT_EVERY == 0 {
                    self.checkpoint(key, version).await;
                }
                Ok(version)
            }
            // Another writer committed this version: let delta-rs read what it did and commit after
            // it (it retries on newer versions and refuses real conflicts); start afresh next time.
            Err(WarehouseError::Delta(deltalake::DeltaTableError::VersionAlreadyExists(_))) => {
                table.load().await?;
                let mut actions = actions;
                let fresh = Known::from_state(table.snapshot()?, column);
                actions.retain(|a| !matches!(a, Action::Remove(_)));
                for r in fresh.files.get(value.as_str()).cloned().unwrap_or_default() {
                    actions.push(Action::Remove(r));
                }
                let props = CommitProperties::default()
                    .with_metadata([("spine".to_string(), meta.info.clone())])
                    .with_application_transactions(txn);
                let done = deltalake::kernel::transaction::CommitBuilder::from(props)
                    .with_actions(actions)
                    .build(Some(table.snapshot()?), table.log_store(), operation)
                    .await?;
                Ok(done.version() as i64)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes a checkpoint at `version`; a failure only costs readers time, so it is logged.
    async fn checkpoint(&self, key: &AssetKey, version: i64) {
        let result = async {
            let mut table = self.table_handle(key)?;
            table.load_version(version as u64).await?;
            deltalake::checkpoints::create_checkpoint(&table, None).await?;
            Ok::<_, WarehouseError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!("could not checkpoint {key} at version {version}: {e}");
        }
    }
}
