//! `assets lineage ASSET --partition KEY`: the recorded lineage of one step key, walked through the
//! materializations themselves — upstream, the exact materializations (partitions, Delta versions) its
//! latest one read; downstream, the materializations that read it.

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError};
use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::store::Materialization;
use std::collections::HashSet;

/// One node of a recorded-lineage tree.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LineageNode {
    /// The step key (`asset` or `asset[partition]`).
    pub step: String,
    /// Its materialization: the one read (upstream), the reader (downstream), or the latest (root).
    pub materialization_id: Option<i64>,
    /// That materialization's Delta version.
    pub delta_version: Option<i64>,
    /// Its run.
    pub run_id: Option<String>,
    /// Whether this node was expanded further up the tree (then it has no children here).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    /// Upstream (or downstream) of it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<LineageNode>,
}

fn node(m: &Materialization) -> LineageNode {
    LineageNode {
        step: m.m.step_key().to_string(),
        materialization_id: Some(m.id),
        delta_version: Some(m.m.delta_version),
        run_id: Some(m.m.run_id.to_string()),
        repeated: false,
        children: Vec::new(),
    }
}

impl Engine {
    /// The recorded lineage of `key[partition]`'s latest materialization: `upstream` (what it read,
    /// recursively) or downstream (who read it), at most `depth` levels. E0402 unknown asset, E0411
    /// unknown partition, E0413 unpartitioned asset, E0305 never materialized.
    pub async fn partition_lineage(
        &self,
        key: &str,
        partition: &str,
        upstream: bool,
        depth: Option<usize>,
    ) -> Result<LineageNode, EngineError> {
        crate::selection::select(&self.project, Some(key))?;
        let key = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
        let Some(def) = &self.project.assets[&key].partitions else {
            return Err(
                DefinitionError::new("E0413", format!("asset '{key}' is not partitioned"))
                    .hint("leave out --partition")
                    .into(),
            );
        };
        let p = PartitionKey(partition.to_string());
        def.check(&p, self.clock.now())
            .map_err(|m| DefinitionError::new("E0411", format!("asset '{key}': {m}")))?;
        let step = StepKey {
            asset: key.clone(),
            partition: Some(p),
        };
        let Some(m) = self.store.latest_materialization(&step).await? else {
            return Err(
                DefinitionError::new("E0305", format!("'{step}' was never materialized"))
                    .hint(format!(
                        "materialize it: assets materialize {key} --partition {partition}"
                    ))
                    .into(),
            );
        };
        let mut seen = HashSet::new();
        let mut root = node(&m);
        self.expand(
            &mut root,
            &m,
            upstream,
            depth.unwrap_or(usize::MAX),
            &mut seen,
        )
        .await?;
        Ok(root)
    }

    async fn expand(
        &self,
        at: &mut LineageNode,
        m: &Materialization,
        upstream: bool,
        depth: usize,
        seen: &mut HashSet<i64>,
    ) -> Result<(), EngineError> {
        if depth == 0 || !seen.insert(m.id) {
            at.repeated = depth != 0;
            return Ok(());
        }
        let next: Vec<Materialization> = if upstream {
            let mut v = Vec::new();
            for u in &m.m.upstream {
                if let Some(id) = u.materialization_id {
                    if let Some(um) = self.store.materialization(id).await? {
                        v.push(um);
                    }
                }
            }
            v
        } else {
            self.store.readers(&m.m.asset_key, m.id).await?
        };
        for n in next {
            let mut child = node(&n);
            Box::pin(self.expand(&mut child, &n, upstream, depth - 1, seen)).await?;
            at.children.push(child);
        }
        Ok(())
    }
}
