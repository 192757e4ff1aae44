//! A source that is an existing Delta table, whoever writes it (Spark, delta-rs, another Spine project).
//!
//! ```yaml
//! key: raw/ledger
//! kind: source
//! delta: ../../finance/warehouse/ledger     # a folder with _delta_log/, relative to this file
//! ```
//!
//! or `delta: s3://bucket/tables/ledger` (options: the source's `storage_options`, else the warehouse's).
//!
//! Its data version is the table's Delta version: an observation reads only the log (the latest version
//! and its schema), a dependent step reads exactly the observed version, so a writer committing in
//! between changes nothing a result records. A version vacuumed away since fails the read, naming it.

use crate::error::first_line;
use deltalake::{DeltaTable, DeltaTableBuilder};
use std::path::PathBuf;
use std::sync::Arc;

/// A Delta-table source, validated.
#[derive(Debug, Clone)]
pub struct DeltaSource {
    /// The table's folder (for an object store, its URL, for messages).
    pub dir: PathBuf,
    /// On an object store: the table's URL and the store's options.
    pub remote: Option<(url::Url, std::collections::HashMap<String, String>)>,
}

impl DeltaSource {
    fn url(&self) -> Result<url::Url, String> {
        if let Some((url, _)) = &self.remote {
            return Ok(url.clone());
        }
        let dir =
            std::path::absolute(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        url::Url::from_directory_path(&dir)
            .map_err(|_| format!("{}: not a folder path", dir.display()))
    }

    /// The table at `version` (latest when `None`); the error names the folder and the version.
    pub async fn open(&self, version: Option<i64>) -> Result<DeltaTable, String> {
        if self.remote.is_none() && !self.dir.join("_delta_log").is_dir() {
            return Err(format!(
                "{} is not a Delta table (no _delta_log folder)",
                self.dir.display()
            ));
        }
        let options = self
            .remote
            .as_ref()
            .map(|(_, o)| o.clone())
            .unwrap_or_default();
        let mut table = DeltaTableBuilder::from_url(self.url()?)
            .map(|b| b.with_storage_options(options))
            .and_then(|b| b.build())
            .map_err(|e| format!("{}: {}", self.dir.display(), first_line(&e.to_string())))?;
        let loaded = match version {
            Some(v) => table.load_version(v.max(0) as u64).await,
            None => table.load().await,
        };
        loaded.map_err(|e| {
            format!(
                "cannot read {} at {}: {}",
                self.dir.display(),
                version.map_or("its latest version".into(), |v| format!("version {v}")),
                first_line(&e.to_string())
            )
        })?;
        Ok(table)
    }

    /// The latest version, reading only the log.
    pub async fn latest(&self) -> Result<i64, String> {
        let table = self.open(None).await?;
        table
            .version()
            .map(|v| v as i64)
            .ok_or_else(|| format!("{} has no version", self.dir.display()))
    }

    /// A table provider over `version`.
    pub async fn provider(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        version: i64,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>, String> {
        let table = self.open(Some(version)).await?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(|e| e.to_string())?;
        table
            .table_provider()
            .await
            .map_err(|e| format!("{}: {}", self.dir.display(), first_line(&e.to_string())))
    }

    /// The data version of `version` of this table.
    pub fn data_version(&self, version: i64) -> String {
        crate::hash::short_hash(format!("delta|{}|{version}", self.dir.display()).as_bytes())
    }
}
