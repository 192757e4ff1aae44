//! `assets history KEY`: an asset's Delta commits, newest first, with what Spine recorded of each (run,
//! step, rows, whether it is published), read from the table's own log, so commits another writer made
//! show too.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::key::AssetKey;
use futures::StreamExt;
use serde::Serialize;

/// One commit of an asset's table.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    /// Its Delta version.
    pub version: i64,
    /// When it was committed, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Delta's operation name (WRITE, MERGE, …).
    pub operation: Option<String>,
    /// The Spine steps that wrote it (several for a group commit of partitions); none: another writer.
    pub steps: Vec<CommitStep>,
}

/// What Spine recorded of one step's part of a commit.
#[derive(Debug, Clone, Serialize)]
pub struct CommitStep {
    /// The step (`KEY` or `KEY[partition]`).
    pub step_id: String,
    /// Its run.
    pub run_id: Option<String>,
    /// Rows it wrote (the table's rows after an append or merge).
    pub rows: Option<i64>,
    /// Whether downstream assets may read it (false: a failed `error` check holds it back); `None`
    /// when the run store has no record of it.
    pub published: Option<bool>,
}

impl Engine {
    /// The latest `limit` commits of `key`'s table, newest first; empty when it has no table.
    pub async fn history(&self, key: &AssetKey, limit: usize) -> Result<Vec<Commit>, EngineError> {
        let Some(table) = self.warehouse.open(key, None).await? else {
            return Ok(Vec::new());
        };
        let latest = table.version().map(|v| v as i64).unwrap_or(0);
        let mut infos = table.history(Some(limit));
        let mut out = Vec::new();
        let mut version = latest;
        while let Some(info) = infos.next().await {
            let info = info.map_err(crate::error::WarehouseError::from)?;
            let spine = info.info.get("spine");
            let parts: Vec<&serde_json::Value> = spine
                .and_then(|s| s.get("group"))
                .and_then(|g| g.as_array())
                .map(|g| g.iter().collect())
                .unwrap_or_else(|| spine.into_iter().collect());
            let mut steps = Vec::new();
            for p in parts
                .into_iter()
                .filter_map(crate::warehouse::CommitInfo::parse)
            {
                let step_id = p.step_id.clone();
                let partition = step_id
                    .strip_prefix(key.as_str())
                    .and_then(|r| r.strip_prefix('['))
                    .and_then(|r| r.strip_suffix(']'));
                let published = self
                    .store
                    .materialization_at(key, partition, version)
                    .await?
                    .map(|m| m.m.published);
                steps.push(CommitStep {
                    run_id: Some(p.run_id.clone()),
                    rows: Some(p.rows),
                    published,
                    step_id,
                });
            }
            out.push(Commit {
                version,
                timestamp_ms: info.timestamp,
                operation: info.operation.clone(),
                steps,
            });
            version -= 1;
        }
        Ok(out)
    }
}
