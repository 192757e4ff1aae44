//! Table maintenance: `assets optimize` (compaction, optionally Z-ordered) and `assets vacuum`
//! (removing data files no version still needs), with Delta's retention safety and Spine's own.
//!
//! A compaction changes files, not rows (its commit has `dataChange = false`), so the run store records
//! that the new version holds the rows of the one before it ([`TableStore::record_version_rewrite`]);
//! every Spine reader of a materialization asks [`Instance::read_version`] which version to open and reads
//! the compacted files.
//!
//! Vacuum keeps, beyond Delta's retention window (the table's `delta.deletedFileRetentionDuration`,
//! 7 days by default; shorter only with `force`), every file of the versions that the published
//! materializations are read at, so no downstream read and no `assets checks` loses its files
//! whatever the retention. Older versions (time travel, `assets reproduce`) are kept only as long as
//! the retention says.
//!
//! [`TableStore::record_version_rewrite`]: crate::store::TableStore::record_version_rewrite

use crate::error::{DefinitionError, EngineError, WarehouseError};
use crate::instance::Instance;
use crate::key::AssetKey;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::table::config::TablePropertiesExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use std::collections::BTreeSet;

/// What `assets optimize` did.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// The asset.
    pub key: AssetKey,
    /// The version compacted.
    pub from_version: i64,
    /// The version it committed (`None`: nothing to compact, no commit).
    pub version: Option<i64>,
    /// Files replaced.
    pub files_removed: u64,
    /// Files written.
    pub files_added: u64,
    /// Bytes of the files replaced.
    pub bytes_removed: i64,
    /// Bytes of the files written.
    pub bytes_added: i64,
    /// Partitions compacted.
    pub partitions: u64,
    /// The Z-order columns (empty: a plain compaction).
    pub z_order: Vec<String>,
}

/// What `assets vacuum` removed (or would remove).
#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    /// The asset.
    pub key: AssetKey,
    /// Whether files were only listed.
    pub dry_run: bool,
    /// The retention applied, in hours.
    pub retention_hours: i64,
    /// Versions whose files were kept whatever their age (the published materializations' reads).
    pub kept_versions: Vec<i64>,
    /// The files removed (or to remove), relative to the table.
    pub files: Vec<String>,
}

fn maintenance_error(message: String, hint: &str) -> EngineError {
    DefinitionError::new("E0308", message).hint(hint).into()
}

impl Instance {
    /// Prunes the run store's records of runs that ended before `before` (`assets gc`), keeping what
    /// staleness, lineage, `reproduce`, failed partitions and cursors read
    /// ([`RetentionStore::prune`](crate::store::RetentionStore::prune)); `dry_run` only counts.
    pub async fn prune_records(
        &self,
        before: &str,
        dry_run: bool,
    ) -> Result<crate::store::PruneReport, EngineError> {
        Ok(self.store.prune(before, dry_run).await?)
    }

    /// The version of `key`'s table to open for the rows recorded at `version`: a compaction of it
    /// when `assets optimize` rewrote it, else `version`.
    pub(crate) async fn read_version(&self, key: &AssetKey, version: i64) -> i64 {
        if version < 0 {
            return version;
        }
        match self.store.read_version(key, version).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cannot look up rewrites of {key} version {version}: {e}");
                version
            }
        }
    }

    /// The definition of `key`; E0402 when the project has none.
    pub(crate) fn known_asset(
        &self,
        key: &AssetKey,
    ) -> Result<&crate::project::AssetSpec, EngineError> {
        self.project.asset(key).ok_or_else(|| {
            DefinitionError::new("E0402", format!("no asset '{key}' in this project"))
                .hint("run `assets list` to see the keys")
                .into()
        })
    }

    /// The asset's table, loaded at its latest version; E0308 when the asset has none.
    async fn maintained_table(&self, key: &AssetKey) -> Result<deltalake::DeltaTable, EngineError> {
        if self.known_asset(key)?.read_in_place() {
            return Err(maintenance_error(
                format!("source '{key}' is read in place: Spine keeps no table of it"),
                "maintain the source's own storage with its own tools",
            ));
        }
        self.warehouse.open(key, None).await?.ok_or_else(|| {
            maintenance_error(
                format!("{key} has no table yet"),
                "materialize it first: `assets materialize KEY`",
            )
        })
    }

    /// Compacts `key`'s table into fewer, larger files (sorted by a Z-order curve over `z_order` when
    /// given), in one commit that changes no rows, and records that the new version holds the rows of
    /// the one it compacted.
    pub async fn optimize(
        &self,
        key: &AssetKey,
        z_order: &[String],
    ) -> Result<OptimizeReport, EngineError> {
        let table = self.maintained_table(key).await?;
        let from_version = table.version().map(|v| v as i64).unwrap_or(0);
        let snapshot = table.snapshot().map_err(WarehouseError::from)?;
        let schema = snapshot.schema();
        let partitioned = snapshot.metadata().partition_columns().to_vec();
        for c in z_order {
            if schema.field(c).is_none() {
                let names: Vec<String> = schema.fields().map(|f| f.name().clone()).collect();
                return Err(maintenance_error(
                    format!(
                        "--z-order column '{c}' is not a column of {key} (its columns: {})",
                        names.join(", ")
                    ),
                    "name columns of the asset's table",
                ));
            }
            if partitioned.contains(c) {
                return Err(maintenance_error(
                    format!("--z-order column '{c}' is a partition column of {key}"),
                    "a partition column is the same in every file of a partition; Z-order by others",
                ));
            }
        }
        let optimize_type = if z_order.is_empty() {
            OptimizeType::Compact
        } else {
            OptimizeType::ZOrder(z_order.to_vec())
        };
        let info = serde_json::json!({"operation": "optimize", "same_rows_as": from_version});
        let (table, metrics) = table
            .optimize()
            .with_type(optimize_type)
            .with_writer_properties(crate::warehouse::writer_properties())
            .with_commit_properties(
                CommitProperties::default().with_metadata([("spine".to_string(), info)]),
            )
            .await
            .map_err(WarehouseError::from)?;
        let after = table.version().map(|v| v as i64).unwrap_or(from_version);
        let version = (after > from_version).then_some(after);
        if let Some(v) = version {
            // A compaction's commit changes no rows: it holds what the version before it held (also
            // when another writer committed between the read and the commit).
            self.store.record_version_rewrite(key, v - 1, v).await?;
            self.warehouse.sync_commit(key, v).await?;
        }
        Ok(OptimizeReport {
            key: key.clone(),
            from_version,
            version,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            bytes_removed: metrics.files_removed.total_size,
            bytes_added: metrics.files_added.total_size,
            partitions: metrics.partitions_optimized,
            z_order: z_order.to_vec(),
        })
    }

    /// Removes the data files of `key`'s table that no version within the retention window needs,
    /// nor any version a published materialization is read at. `retention_hours` below the table's
    /// retention (7 days by default) needs `force`; `dry_run` only lists the files.
    pub async fn vacuum(
        &self,
        key: &AssetKey,
        retention_hours: Option<u64>,
        force: bool,
        dry_run: bool,
    ) -> Result<VacuumReport, EngineError> {
        let table = self.maintained_table(key).await?;
        let snapshot = table.snapshot().map_err(WarehouseError::from)?;
        let minimum = snapshot
            .table_config()
            .deleted_file_retention_duration()
            .as_secs()
            / 3600;
        let retention = retention_hours.unwrap_or(minimum);
        if retention < minimum && !force {
            return Err(maintenance_error(
                format!(
                    "--retain-hours {retention} is below {key}'s retention of {minimum} hours \
                     (delta.deletedFileRetentionDuration): time travel and readers still on an older \
                     version would lose their files"
                ),
                "keep the default, or add --force when no reader needs older versions",
            ));
        }
        // Every version a published materialization of the asset is read at keeps its files.
        let mut kept = BTreeSet::new();
        for (step, m) in self.store.latest_materializations().await? {
            if step.asset == *key && m.m.published && m.m.delta_version >= 0 {
                kept.insert(self.read_version(key, m.m.delta_version).await);
            }
        }
        let kept: Vec<i64> = kept.into_iter().collect();
        let keep: Vec<u64> = kept.iter().map(|v| *v as u64).collect();
        // Delta's full vacuum lists every file under the table's folder that no kept version
        // references; only the table's own data files among them are removed (see `own_data_file`).
        let partition_columns = snapshot.metadata().partition_columns().to_vec();
        let local_root = self.warehouse.local_dir(key);
        let (table, metrics) = table
            .vacuum()
            .with_mode(VacuumMode::Full)
            .with_retention_period(chrono::Duration::hours(retention as i64))
            .with_enforce_retention_duration(false)
            .with_keep_versions(&keep)
            .with_dry_run(true)
            .await
            .map_err(WarehouseError::from)?;
        let mut files: Vec<String> = metrics
            .files_deleted
            .into_iter()
            .filter(|f| own_data_file(f, &partition_columns, local_root.as_deref()))
            .collect();
        if !dry_run {
            let store = table.log_store().object_store(None);
            for f in &files {
                match store
                    .delete(&object_store::path::Path::from(f.as_str()))
                    .await
                {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(WarehouseError::BadOutput(format!(
                            "vacuum of {key} could not remove {f}: {e}"
                        ))
                        .into())
                    }
                }
            }
        }
        files.sort();
        Ok(VacuumReport {
            key: key.clone(),
            dry_run,
            retention_hours: retention as i64,
            kept_versions: kept,
            files,
        })
    }
}

/// Whether `path` (relative to the table's folder) is one of the table's own data files, which
/// vacuum may remove: a `part-*.parquet` file at the table's root or in its own partition folders
/// (`COLUMN=VALUE/`, for the table's partition columns), reached through no symbolic link. Anything
/// else under the folder (another tool's files, a notes file, a folder linked from elsewhere) is
/// left alone; so would be another table nested in the folder, which project keys no longer allow
/// (E0207).
fn own_data_file(
    path: &str,
    partition_columns: &[String],
    local_root: Option<&std::path::Path>,
) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let Some((name, folders)) = parts.split_last() else {
        return false;
    };
    if !(name.starts_with("part-") && name.ends_with(".parquet")) {
        return false;
    }
    let in_partition_folder = |folder: &&str| {
        folder
            .split_once('=')
            .is_some_and(|(column, _)| partition_columns.iter().any(|c| c == column))
    };
    if folders.len() > partition_columns.len() || !folders.iter().all(in_partition_folder) {
        return false;
    }
    let Some(root) = local_root else {
        return true;
    };
    // On a local disk, a folder or file that is a symbolic link leads out of the table.
    let mut at = root.to_path_buf();
    parts.iter().all(|p| {
        at.push(p);
        std::fs::symlink_metadata(&at).is_ok_and(|m| !m.file_type().is_symlink())
    })
}

#[cfg(test)]
mod tests {
    use super::own_data_file;

    #[test]
    fn only_the_tables_own_data_files_are_removable() {
        let cols = vec!["day".to_string()];
        assert!(own_data_file(
            "part-00000-abc-c000.zstd.parquet",
            &cols,
            None
        ));
        assert!(own_data_file(
            "day=2026-01-01/part-0-x.parquet",
            &cols,
            None
        ));
        for other in [
            "notes.txt",
            "z/part-00000-abc-c000.zstd.parquet",
            "z/_delta_log/00000000000000000000.json",
            "region=eu/part-0-x.parquet",
            "day=1/day=2/part-0-x.parquet",
            "_delta_log/00000000000000000000.json",
        ] {
            assert!(!own_data_file(other, &cols, None), "{other}");
        }
    }
}
