//! [`Engine`]: a loaded project bound to its run store and warehouse, with the kinds it can execute.
//! `materialize` (in `materialize.rs`) runs plans; this module opens engines and answers status queries.

use crate::error::EngineError;
use crate::key::AssetKey;
use crate::kinds::KindRegistry;
use crate::project::{load_project, Project};
use crate::selection::select;
use crate::staleness::{freshness, Freshness};
use crate::store::{open_store, Materialization, RunStore};
use crate::warehouse::Warehouse;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// A project ready to run.
#[derive(Clone)]
pub struct Engine {
    /// The project.
    pub project: Arc<Project>,
    /// Its run store.
    pub store: Arc<dyn RunStore>,
    /// Its warehouse.
    pub warehouse: Warehouse,
    /// Kinds it can execute.
    pub kinds: KindRegistry,
}

/// One row of `assets status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssetStatus {
    /// Asset.
    pub key: AssetKey,
    /// Missing / fresh / stale with reasons.
    pub freshness: Freshness,
    /// Whether an ancestor is stale or missing (so a full refresh would recompute this one too).
    pub upstream_outdated: bool,
    /// Latest materialization.
    pub latest: Option<Materialization>,
}

impl Engine {
    /// Loads the project at `root` and opens its store and warehouse.
    pub async fn load(root: &Path, kinds: KindRegistry) -> Result<Self, EngineError> {
        let project = load_project(root, &kinds.names())?;
        Self::open(project, kinds).await
    }

    /// Opens the store and warehouse of an already built project.
    pub async fn open(project: Project, kinds: KindRegistry) -> Result<Self, EngineError> {
        let store = open_store(&project.config.state_url).await?;
        let options = project
            .config
            .warehouse_options
            .clone()
            .into_iter()
            .collect();
        let warehouse = Warehouse::new(project.config.warehouse_url.clone(), options)?
            .with_fsync(project.config.warehouse_fsync);
        Ok(Engine {
            project: Arc::new(project),
            store,
            warehouse,
            kinds,
        })
    }

    /// Status of the selected assets, in dependency order.
    pub async fn status(&self, selection: Option<&str>) -> Result<Vec<AssetStatus>, EngineError> {
        let selected = select(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let order = self.project.graph.topological_order().unwrap_or_default();
        let mut outdated: HashMap<&AssetKey, bool> = HashMap::new();
        let mut out = Vec::new();
        for key in order {
            let spec = &self.project.assets[key];
            let f = freshness(spec, &latest);
            let up = spec
                .deps
                .iter()
                .any(|d| outdated.get(d).copied().unwrap_or(false));
            outdated.insert(key, up || f != Freshness::Fresh);
            if selected.contains(key) {
                out.push(AssetStatus {
                    key: key.clone(),
                    freshness: f,
                    upstream_outdated: up,
                    latest: latest.get(key).cloned(),
                });
            }
        }
        Ok(out)
    }
}
