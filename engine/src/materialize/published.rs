//! What a reader sees of a partitioned table: each partition's last *published* rows.
//!
//! Partitions are committed and published one by one, so no single table version needs to hold only
//! published rows: when partition `b` is re-materialized and held back by a failed check, and then
//! partition `c` is published, the table's latest version holds `b`'s held-back files beside `c`'s.
//! A reader of that version (a downstream step reading several partitions, `assets sql`) takes every
//! partition from it except the held-back ones, which it takes from the version their published
//! materialization wrote, or leaves out when none was ever published.

use super::*;
use std::collections::{BTreeMap, HashMap};

/// Why a published view could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error(transparent)]
    Warehouse(#[from] crate::error::WarehouseError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl From<ViewError> for EngineError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::Store(e) => e.into(),
            ViewError::Warehouse(e) => e.into(),
            ViewError::DataFusion(e) => e.into(),
        }
    }
}

impl Instance {
    /// Registers under `key`'s name in `session` the rows of table version `base` (already opened as
    /// `provider`) of the partitions `wanted` (`None`: all), each as published: a partition held back
    /// in `base` is read from the version of its published materialization (`published`, by
    /// partition) or left out. Without held-back partitions this is a filter on `base`, as before.
    pub(crate) async fn register_published(
        &self,
        session: &SessionContext,
        key: &AssetKey,
        base: (Arc<dyn datafusion::catalog::TableProvider>, i64),
        wanted: Option<&[PartitionKey]>,
        published: &HashMap<PartitionKey, i64>,
    ) -> Result<(), ViewError> {
        let (provider, base_version) = base;
        let wanted_set = wanted.map(|w| w.iter().collect::<std::collections::HashSet<_>>());
        // Held back in `base`: a materialization newer than the partition's published one, committed
        // at or before `base`, of a partition this read wants.
        // One partition read at the very version its published materialization wrote (the identity
        // mapping, every step of a daily backfill) cannot hold anything newer: no query.
        let exact = matches!(wanted, Some([p]) if published.get(p) == Some(&base_version));
        let held = match exact {
            true => Vec::new(),
            false => self.store.held_back_of(key).await?,
        };
        let mut hidden: Vec<PartitionKey> = Vec::new();
        for m in held {
            let Some(p) = m.m.partition_key.as_ref() else {
                continue;
            };
            if m.m.delta_version > base_version
                || wanted_set.as_ref().is_some_and(|w| !w.contains(p))
                || hidden.contains(p)
            {
                continue;
            }
            hidden.push(p.clone());
        }
        let values = |p: &PartitionKey| match self.project.assets[key].partitions.as_ref() {
            Some(d) => d.values(p),
            None => vec![(crate::partitions::DEFAULT_COLUMN.into(), p.0.clone())],
        };
        let name = datafusion::common::TableReference::bare(key.as_str());
        if hidden.is_empty() {
            match wanted {
                Some(w) => {
                    let w: Vec<_> = w.iter().map(values).collect();
                    crate::session::register_partitions(session, key.as_str(), provider, &w)?;
                }
                None => {
                    session.register_table(name, provider)?;
                }
            }
            return Ok(());
        }
        // From `base`: what is wanted, less the hidden partitions.
        let hidden_values: Vec<_> = hidden.iter().map(values).collect();
        let mut rows = session.read_table(provider)?;
        rows = match wanted {
            Some(w) => {
                let kept: Vec<_> = w
                    .iter()
                    .filter(|p| !hidden.contains(p))
                    .map(values)
                    .collect();
                rows.filter(crate::session::partitions_filter(&kept))?
            }
            None => rows.filter(!crate::session::partitions_filter(&hidden_values))?,
        };
        // The hidden partitions that were once published, from their published versions.
        let columns: Vec<String> = rows
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut by_version: BTreeMap<i64, Vec<Vec<(String, String)>>> = BTreeMap::new();
        for p in &hidden {
            if let Some(v) = published.get(p) {
                let v = self.read_version(key, *v).await;
                by_version.entry(v).or_default().push(values(p));
            }
        }
        for (version, parts) in by_version {
            let Some((older, _)) = self.warehouse.provider(key, Some(version), session).await?
            else {
                continue;
            };
            let older = session
                .read_table(older)?
                .filter(crate::session::partitions_filter(&parts))?;
            // By name: an older version may lack a column added since (it reads as NULL).
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            rows = rows.union_by_name(older)?.select_columns(&names)?;
        }
        session.register_table(name, rows.into_view())?;
        Ok(())
    }
}
