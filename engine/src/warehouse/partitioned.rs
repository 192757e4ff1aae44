//! Committing partitions of a partitioned table: many partitions per commit, at a cost that stays
//! flat as the table's log grows.
//!
//! **Group commit.** Steps of one table that finish side by side are committed together: a step queues
//! its request; whoever takes the table's lock (the leader) lingers while other steps that announced
//! a commit to this table ([`Warehouse::intend`]: steps of a run's executor window, computing or
//! waiting for a compute slot) have not queued theirs — at most [`LINGER`], at most [`MAX_GROUP`]
//! partitions — then writes one commit replacing all their partitions, carrying one
//! `txn` per step (so recovery still finds each step's commit by its app id), and answers each. A
//! 10,000-partition backfill is hundreds of commits, not 10,000. A step alone does not wait.
//!
//! **Flat cost.** Each commit removes the live files of its partitions and adds the new ones. Asking
//! delta-rs to prepare each commit replays log files and re-materializes the table's file list every
//! time (~40 ms and tens of MiB per commit at a few hundred versions). Instead this process remembers,
//! per table, what it knows after its own last commit — the version, the metadata, the live files of
//! each partition — and writes the next version itself with the log store's atomic put-if-absent (as
//! delta-rs's own writers do). When another writer got there first (the version exists), it falls back
//! to delta-rs's commit, which reads their commits and checks for conflicts, and forgets what it knew.
//! A checkpoint is written every [`CHECKPOINT_EVERY`] versions so readers replay at most that many
//! JSON files.

use super::*;
use deltalake::kernel::{Metadata, Remove};
use deltalake::table::state::DeltaTableState;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Versions between checkpoints (Delta's default interval).
const CHECKPOINT_EVERY: i64 = 100;
/// At most this many partitions in one commit.
const MAX_GROUP: usize = 256;
/// The longest a leader waits for announced steps before committing what it has.
const LINGER: Duration = Duration::from_millis(50);

/// What this process knows of a partitioned table after its last commit to it.
pub(super) struct Known {
    version: i64,
    metadata: Metadata,
    schema: StructType,
    /// Live files of each partition (by its values joined with `|`), as the removes that would
    /// replace them.
    files: HashMap<String, Vec<Remove>>,
}

/// A partition's identity in [`Known::files`]: its values in partition-column order, joined.
fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values.collect::<Vec<_>>().join("|")
}

impl Known {
    fn from_state(state: &DeltaTableState) -> Self {
        let columns = state.metadata().partition_columns().to_vec();
        let mut files: HashMap<String, Vec<Remove>> = HashMap::new();
        for f in state.log_data().iter() {
            let map = f.partition_values_map();
            let values: Vec<String> = columns
                .iter()
                .map(|c| map.get(c).cloned().flatten().unwrap_or_default())
                .collect();
            files
                .entry(joined(values.iter().map(String::as_str)))
                .or_default()
                .push(f.remove_action(true));
        }
        Known {
            version: state.version() as i64,
            metadata: state.metadata().clone(),
            schema: state.schema().as_ref().clone(),
            files,
        }
    }
}

/// One step's part of a commit: its schema, partition, files and txn.
type Part = (StructType, Vec<(String, String)>, Staged, CommitMeta);

/// A step's commit waiting in its table's queue.
struct Request {
    columns: StructType,
    values: Vec<(String, String)>,
    staged: Staged,
    meta: CommitMeta,
    reply: tokio::sync::oneshot::Sender<Result<i64, String>>,
}

impl Request {
    fn id(&self) -> String {
        joined(self.values.iter().map(|(_, v)| v.as_str()))
    }
}

/// One partitioned table's commit state: what is known of it (locked while a commit is prepared and
/// written), the queued requests and how many steps announced a commit.
#[derive(Default)]
pub(super) struct TableSlot {
    known: tokio::sync::Mutex<Option<Known>>,
    queue: std::sync::Mutex<VecDeque<Request>>,
    intents: AtomicUsize,
}

impl TableSlot {
    fn queued(&self) -> usize {
        self.queue.lock().expect("commit queue lock").len()
    }

    /// The next group: queued requests in order with the first one's schema, no partition twice.
    fn next_group(&self) -> Vec<Request> {
        let mut queue = self.queue.lock().expect("commit queue lock");
        let mut group: Vec<Request> = Vec::new();
        let mut ids = HashSet::new();
        let mut rest = VecDeque::new();
        while let Some(r) = queue.pop_front() {
            let fits = group.len() < MAX_GROUP
                && group.first().is_none_or(|f| f.columns == r.columns)
                && !ids.contains(&r.id());
            if fits {
                ids.insert(r.id());
                group.push(r);
            } else {
                rest.push_back(r);
            }
        }
        *queue = rest;
        group
    }
}

/// One slot per partitioned table, shared by clones of the warehouse.
#[derive(Clone, Default)]
pub(super) struct TableStates(Arc<std::sync::Mutex<HashMap<AssetKey, Arc<TableSlot>>>>);

impl std::fmt::Debug for TableStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableStates")
    }
}

impl TableStates {
    fn slot(&self, key: &AssetKey) -> Arc<TableSlot> {
        self.0
            .lock()
            .expect("table states lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }
}

/// A step's announcement that it will commit a partition of a table ([`Warehouse::intend`]); it
/// ends when dropped.
pub struct CommitIntent(Arc<TableSlot>);

impl Drop for CommitIntent {
    fn drop(&mut self) {
        self.0.intents.fetch_sub(1, Ordering::SeqCst);
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
    /// Announces that the caller is computing a partition of `key` it will commit: a commit of that
    /// table lingers (briefly) for it, so they go in one commit. Held until the commit returns.
    pub fn intend(&self, key: &AssetKey) -> CommitIntent {
        let slot = self.states.slot(key);
        slot.intents.fetch_add(1, Ordering::SeqCst);
        CommitIntent(slot)
    }

    /// Replaces one partition of `key`'s table with the staged files, in a commit that may carry
    /// other steps' partitions too (see the module notes). Returns the version that holds it, synced.
    pub(super) async fn commit_partition(
        &self,
        key: &AssetKey,
        mut table: DeltaTable,
        columns: StructType,
        mut staged: Staged,
        meta: CommitMeta,
    ) -> Result<i64, WarehouseError> {
        let WriteScope::Partition { values, .. } = meta.scope.clone() else {
            return Err(WarehouseError::Unsupported(
                "internal: a partition commit without a partition".into(),
            ));
        };
        staged.batches = None;
        let slot = self.states.slot(key);
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        slot.queue
            .lock()
            .expect("commit queue lock")
            .push_back(Request {
                columns,
                values,
                staged,
                meta,
                reply,
            });
        loop {
            tokio::select! {
                biased;
                r = &mut answer => {
                    return r
                        .map_err(|_| WarehouseError::Unsupported("internal: a commit was abandoned".into()))?
                        .map_err(WarehouseError::BadOutput);
                }
                mut known = slot.known.lock() => {
                    // Wait while announced steps of this table are still computing.
                    let since = Instant::now();
                    loop {
                        let queued = slot.queued();
                        if queued == 0
                            || queued >= MAX_GROUP
                            || slot.intents.load(Ordering::SeqCst) <= queued
                            || since.elapsed() >= LINGER
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    loop {
                        let group = slot.next_group();
                        if group.is_empty() {
                            break;
                        }
                        let (requests, replies): (Vec<_>, Vec<_>) =
                            group.into_iter().map(|r| ((r.columns, r.values, r.staged, r.meta), r.reply)).unzip();
                        let result = self.commit_group(key, &mut table, &mut known, requests).await;
                        for reply in replies {
                            let _ = reply.send(result.as_ref().map(|v| *v).map_err(|e| e.to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Writes one commit replacing the partitions of `group` (same schema, distinct partitions) and
    /// syncs it.
    async fn commit_group(
        &self,
        key: &AssetKey,
        table: &mut DeltaTable,
        cached: &mut Option<Known>,
        group: Vec<Part>,
    ) -> Result<i64, WarehouseError> {
        let mut known = match cached.take() {
            Some(known) => known,
            None => {
                table.load().await?;
                Known::from_state(table.snapshot()?)
            }
        };
        let Some((columns, first, _, _)) = group.first() else {
            return Err(WarehouseError::Unsupported(
                "internal: an empty commit group".into(),
            ));
        };
        let columns = columns.clone();
        let wanted: Vec<String> = first.iter().map(|(c, _)| c.clone()).collect();
        let partitioned_by: Vec<String> = known.metadata.partition_columns().to_vec();
        if partitioned_by != wanted {
            return Err(WarehouseError::Unsupported(format!(
                "the table of {key} is partitioned by [{}], not by [{}] as its definition says; \
                 a table keeps its partition columns: move the table's folder aside and materialize \
                 the partitions again",
                partitioned_by.join(", "),
                wanted.join(", ")
            )));
        }
        let now_ms = self.clock.now_ms();
        let mut actions = Vec::new();
        let new_metadata = group
            .first()
            .map(|(_, _, _, meta)| {
                meta.table
                    .next_metadata(&known.metadata, &known.schema, &columns)
            })
            .transpose()?
            .flatten();
        if let Some(m) = &new_metadata {
            actions.push(Action::Metadata(m.clone()));
        }
        let mut ids = Vec::new();
        let mut added: Vec<(String, Vec<Remove>)> = Vec::new();
        let mut infos = Vec::new();
        let mut txns = Vec::new();
        let mut predicates = Vec::new();
        for (_, values, staged, meta) in group {
            let id = joined(values.iter().map(|(_, v)| v.as_str()));
            for mut r in known.files.get(&id).cloned().unwrap_or_default() {
                r.deletion_timestamp = Some(now_ms);
                actions.push(Action::Remove(r));
            }
            let adds: Vec<Remove> = staged
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Add(add) => Some(removal(add, now_ms)),
                    _ => None,
                })
                .collect();
            actions.extend(staged.actions);
            predicates.push(
                values
                    .iter()
                    .map(|(c, v)| format!("{c} = '{v}'"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            );
            added.push((id.clone(), adds));
            ids.push(id);
            infos.push(meta.info);
            txns.push(Transaction::new(&meta.app_id, meta.seq));
        }
        let predicate = match predicates.len() {
            1 => predicates.remove(0),
            _ => predicates
                .iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" OR "),
        };
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(wanted),
            predicate: Some(predicate),
        };
        // One step: its info as `spine` (as an unpartitioned commit); several: `{"group": [...]}`.
        let info = match infos.len() {
            1 => infos.remove(0),
            _ => serde_json::json!({ "group": infos }),
        };
        let app = HashMap::from([("spine".to_string(), info.clone())]);
        let version = known.version + 1;
        let bytes = CommitData::new(actions.clone(), operation.clone(), app, txns.clone())
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
        let version = match written {
            Ok(()) => {
                known.version = version;
                known.files.extend(added);
                if let Some(m) = new_metadata {
                    known.metadata = m;
                    known.schema = columns;
                }
                *cached = Some(known);
                version
            }
            // Another writer committed this version: let delta-rs read what it did and commit after
            // it (it retries on newer versions and refuses real conflicts); start afresh next time.
            Err(WarehouseError::Delta(deltalake::DeltaTableError::VersionAlreadyExists(_))) => {
                table.load().await?;
                let mut actions = actions;
                let fresh = Known::from_state(table.snapshot()?);
                actions.retain(|a| !matches!(a, Action::Remove(_)));
                for id in &ids {
                    for r in fresh.files.get(id).cloned().unwrap_or_default() {
                        actions.push(Action::Remove(r));
                    }
                }
                let props = CommitProperties::default()
                    .with_metadata([("spine".to_string(), info)])
                    .with_application_transactions(txns);
                let done = deltalake::kernel::transaction::CommitBuilder::from(props)
                    .with_actions(actions)
                    .build(Some(table.snapshot()?), table.log_store(), operation)
                    .await?;
                done.version() as i64
            }
            Err(e) => return Err(e),
        };
        self.sync_commit(key, version).await?;
        if version % CHECKPOINT_EVERY == 0 {
            self.checkpoint(key, version).await;
        }
        Ok(version)
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
