//! Table maintenance: `assets optimize` (compaction, optionally Z-ordered) and `assets vacuum`
//! (removing data files no version still needs), with Delta's retention safety and Spine's own.
//!
//! A compaction changes files, not rows (its commit has `dataChange = false`), so the run store records
//! that the new version holds the rows of the one before it ([`TableStore::record_version_rewrite`]);
//! every Spine reader of a materialization asks [`Engine::read_version`] which version to open and reads
//! the compacted files.
//!
//! Vacuum keeps, beyond Delta's retention window (the table's `delta.deletedFileRetentionDuration`,
//! 7 days by default; shorter only with `force`), every file of the versions that the published
//! materializations are read at, so no downstream read and no `assets checks` loses its files
//! whatever the retention. Older versions (time travel, `assets reproduce`) are kept only as long as
//! the retention says.
//!
//! [`TableStore::record_version_rewrite`]: crate::store::TableStore::record_version_rewrite

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError, WarehouseError};
use crate::key::AssetKey;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::table::config::TablePropertiesExt;
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

impl Engine {
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
        let info = serde_json::json!({"operation": "vacuum"});
        let (_, metrics) = table
            .vacuum()
            .with_mode(VacuumMode::Full)
            .with_retention_period(chrono::Duration::hours(retention as i64))
            .with_enforce_retention_duration(false)
            .with_keep_versions(&keep)
            .with_dry_run(dry_run)
            .with_commit_properties(
                CommitProperties::default().with_metadata([("spine".to_string(), info)]),
            )
            .await
            .map_err(WarehouseError::from)?;
        let root = self.warehouse.table_url(key)?.to_string();
        let mut files: Vec<String> = metrics
            .files_deleted
            .iter()
            .map(|f| {
                f.strip_prefix(&root)
                    .unwrap_or(f)
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect();
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
