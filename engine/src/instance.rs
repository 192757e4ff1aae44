//! [`Instance`]: a loaded project bound to its run store and warehouse, with the kinds it can execute
//! and the clock it reads — what the work modules (materialize, backfill, daemon, recovery, checks,
//! doctor, maintenance) operate on. The top-floor [`Engine`](crate::Engine) opens one and hands work
//! to it.

use crate::clock::Clock;
use crate::error::EngineError;
use crate::kinds::KindRegistry;
use crate::project::Project;
use crate::store::{ReadStore, RunStore};
use crate::warehouse::Warehouse;
use std::collections::HashMap;
use std::sync::Arc;

/// A project bound to its run store and warehouse.
#[derive(Clone)]
pub struct Instance {
    pub(crate) project: Arc<Project>,
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) warehouse: Warehouse,
    pub(crate) kinds: KindRegistry,
    pub(crate) clock: Arc<dyn Clock>,
    /// Who launches the runs it records (`cli:USER` unless [`Engine::launched_by`](crate::Engine::launched_by) says otherwise).
    pub(crate) launcher: String,
    /// Tags of the runs it records ([`Engine::with_tags`](crate::Engine::with_tags)).
    pub(crate) tags: std::collections::BTreeMap<String, String>,
}

/// Whether some asset has dynamic partitions (or a dynamic dimension).
pub(crate) fn uses_dynamic(project: &Project) -> bool {
    project.assets.values().any(|a| {
        a.partitions
            .as_ref()
            .is_some_and(|p| !p.dynamic_sets().is_empty())
    })
}

/// Gives every dynamic partition set of `project` the keys in `sets`.
pub(crate) fn fill_dynamic(
    project: &mut Project,
    sets: &HashMap<String, Vec<crate::key::PartitionKey>>,
) {
    for spec in project.assets.values_mut() {
        if let Some(def) = spec.partitions.as_mut() {
            def.fill_dynamic(sets);
        }
    }
}

impl Instance {
    /// Adds `keys` to the dynamic partition set `name` (E0419 when no asset uses it; each key checked
    /// as a partition key, E0411); returns how many were new. Engines opened afterwards see them.
    pub async fn add_dynamic_partitions(
        &self,
        name: &str,
        keys: &[String],
    ) -> Result<usize, EngineError> {
        let used = self.project.assets.values().any(|a| {
            a.partitions
                .as_ref()
                .is_some_and(|p| p.dynamic_sets().contains(&name))
        });
        if !used {
            return Err(crate::error::DefinitionError::new(
                "E0419",
                format!("no asset has the dynamic partitions '{name}'"),
            )
            .hint("declare them on an asset: `partitions: {dynamic: NAME}`")
            .into());
        }
        let mut parsed = Vec::new();
        for k in keys {
            crate::partitions::validate_key(k)
                .map_err(|m| crate::error::DefinitionError::new("E0411", m))?;
            parsed.push(crate::key::PartitionKey(k.clone()));
        }
        Ok(self.store.add_dynamic_partitions(name, &parsed).await?)
    }

    /// How `spec` is read in place, when its kind reads it so (observed, never copied): the engine
    /// asks the kind ([`crate::kinds::AssetKind::reads_in_place`]) instead of naming its type.
    pub(crate) fn in_place<'a>(
        &'a self,
        spec: &'a crate::project::AssetSpec,
    ) -> Option<&'a dyn crate::kinds::ReadsInPlace> {
        self.kinds.get(&spec.kind)?.reads_in_place(&spec.body)
    }

    /// What a kind keeps about the outside work a parked step of `run` waits on
    /// ([`crate::kinds::parked_key`]: a workflow's id), if anything.
    pub async fn parked_handle(
        &self,
        run: &crate::key::RunId,
        step: &crate::key::StepKey,
    ) -> Result<Option<serde_json::Value>, crate::error::EngineError> {
        let key = crate::kinds::parked_key(run, step);
        Ok(self
            .store
            .checkpoints(&key)
            .await?
            .into_iter()
            .next()
            .map(|c| c.delta))
    }

    /// The project.
    pub fn project(&self) -> &Arc<Project> {
        &self.project
    }

    /// Its whole run store, protocol halves included: for the engine's own work and for tests. The
    /// CLI and the UI read through [`Instance::reader`] and change state through the engine.
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
    }

    /// The read parts of its run store (runs, steps, events, materializations, ticks, check
    /// results): what the CLI and the UI read.
    pub fn reader(&self) -> Arc<dyn ReadStore> {
        self.store.clone()
    }

    /// Flushes and closes the run store's connections (SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.store.close().await
    }

    /// Its warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The kinds it can execute.
    pub fn kinds(&self) -> &KindRegistry {
        &self.kinds
    }

    /// Where its time comes from (leases, waits, retry back-off).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A run's scratch folder (`.spine/tmp/<run id>`): private files of its attempts, removed when the
    /// run ends or, after a crash, when it is settled.
    pub(crate) fn run_scratch(&self, run_id: &crate::key::RunId) -> std::path::PathBuf {
        self.project
            .config
            .root
            .join(".spine")
            .join("tmp")
            .join(run_id.as_str())
    }

    /// Where the log lines of a step attempt that the run store does not keep are written (see
    /// [`EventSink`](crate::kinds::EventSink)): `.spine/logs/RUN/STEP-ATTEMPT.log`.
    pub fn step_log_file(
        &self,
        run_id: &crate::key::RunId,
        step_id: &str,
        attempt: u32,
    ) -> std::path::PathBuf {
        self.project
            .config
            .root
            .join(".spine")
            .join("logs")
            .join(run_id.as_str())
            .join(format!(
                "{}-{attempt}.log",
                step_id.replace(['/', '[', ']', '|'], "__")
            ))
    }
}
