//! [`Engine`]: a loaded project bound to its run store and warehouse, with the kinds it can execute.
//! `materialize` (in `materialize.rs`) runs plans; this module opens engines and answers status queries.

use crate::clock::{Clock, SystemClock};
use crate::error::EngineError;
use crate::key::AssetKey;
use crate::kinds::KindRegistry;
use crate::loader::load_project;
use crate::project::Project;
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
    pub(crate) project: Arc<Project>,
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) warehouse: Warehouse,
    pub(crate) kinds: KindRegistry,
    pub(crate) clock: Arc<dyn Clock>,
    /// Who launches the runs it records (`cli:USER` unless [`Engine::launched_by`] says otherwise).
    pub(crate) launcher: String,
    /// Tags of the runs it records ([`Engine::with_tags`]).
    pub(crate) tags: std::collections::BTreeMap<String, String>,
}

/// One row of `assets status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AssetStatus {
    /// Asset.
    pub key: AssetKey,
    /// Missing / fresh / stale with reasons.
    pub freshness: Freshness,
    /// `missing`, `stale`, `fresh`, or `upstream_stale` (fresh against its upstreams' latest data, but an
    /// ancestor is stale or missing, so refreshing that ancestor will recompute this one too).
    pub state: &'static str,
    /// Whether an ancestor is stale or missing (so a full refresh would recompute this one too).
    pub upstream_outdated: bool,
    /// The nearest stale or missing ancestor that makes this one `upstream_stale`.
    pub outdated_upstream: Option<AssetKey>,
    /// Latest materialization (of the whole asset; the latest of any partition for a partitioned one).
    pub latest: Option<Materialization>,
    /// For a partitioned asset: how many of its partitions are in each state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<PartitionCounts>,
    /// Newer versions a failed `error` check keeps unpublished (write-audit-publish).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<HeldBack>,
}

/// A version a failed check keeps unpublished.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    /// Its partition, for a partitioned asset.
    pub partition: Option<crate::key::PartitionKey>,
    /// Its Delta version.
    pub delta_version: i64,
    /// The `error` checks that failed on it.
    pub failed_checks: Vec<String>,
}

/// How many partitions of a partitioned asset are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PartitionCounts {
    /// Partitions that exist now.
    pub total: usize,
    /// Up to date.
    pub fresh: usize,
    /// Materialized but stale.
    pub stale: usize,
    /// Never materialized.
    pub missing: usize,
    /// Not fresh, and its latest step failed; counted here instead of as stale or missing (a step
    /// skipped because its upstream failed leaves its partition stale or missing).
    pub failed: usize,
    /// Rows of the table: the row counts of the partitions' latest published materializations.
    pub rows: i64,
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

impl Engine {
    /// Loads the project at `root` and opens its store and warehouse.
    pub async fn load(root: &Path, kinds: KindRegistry) -> Result<Self, EngineError> {
        let project = load_project(root, &kinds)?;
        Self::open(project, kinds).await
    }

    /// Opens the store and warehouse of an already built project.
    pub async fn open(mut project: Project, kinds: KindRegistry) -> Result<Self, EngineError> {
        let store = open_store(&project.config.state_url).await?;
        // Dynamic partition sets take the keys the store holds now.
        if uses_dynamic(&project) {
            fill_dynamic(&mut project, &store.dynamic_partitions().await?);
        }
        let (warehouse, warning) = Warehouse::for_project(&project.config)?;
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        Ok(Engine {
            project: Arc::new(project),
            store,
            warehouse,
            kinds,
            clock: Arc::new(SystemClock),
            launcher: format!("cli:{}", user_name()),
            tags: Default::default(),
        })
    }

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

    /// Runs this engine records carry `tags` (`--tag KEY=VALUE`).
    pub fn with_tags(mut self, tags: std::collections::BTreeMap<String, String>) -> Self {
        self.tags = tags;
        self
    }

    /// Runs this engine records are launched by `who` (`ui:USER`, …) instead of `cli:USER`.
    pub fn launched_by(mut self, who: impl Into<String>) -> Self {
        self.launcher = who.into();
        self
    }

    /// The project.
    pub fn project(&self) -> &Arc<Project> {
        &self.project
    }

    /// Its run store.
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
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

    /// The same engine reading time from `clock` (tests use a [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.store = self.store.with_clock(clock.clone());
        self.clock = clock;
        self
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

    /// Status of the selected assets, in dependency order.
    pub async fn status(&self, selection: Option<&str>) -> Result<Vec<AssetStatus>, EngineError> {
        let selected = select(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let outcomes = if selected
            .iter()
            .any(|k| self.project.assets[k].partitions.is_some())
        {
            self.store.latest_step_outcomes(None).await?
        } else {
            HashMap::new()
        };
        let mut held: HashMap<AssetKey, Vec<HeldBack>> = HashMap::new();
        for m in self.store.held_back().await? {
            if !selected.contains(&m.m.asset_key) {
                continue;
            }
            let failed_checks = self
                .store
                .check_results(m.id)
                .await?
                .into_iter()
                .filter(|c| c.outcome.blocks())
                .map(|c| c.outcome.name)
                .collect();
            held.entry(m.m.asset_key.clone())
                .or_default()
                .push(HeldBack {
                    partition: m.m.partition_key.clone(),
                    delta_version: m.m.delta_version,
                    failed_checks,
                });
        }
        let order = self.project.graph.topological_order().unwrap_or_default();
        // For each asset: the stale or missing asset (itself or an ancestor) that makes it outdated.
        let mut outdated_by: HashMap<&AssetKey, &AssetKey> = HashMap::new();
        let mut out = Vec::new();
        for key in order {
            let spec = &self.project.assets[key];
            let step = crate::key::StepKey::whole(key.clone());
            let (mut f, partitions) = match &spec.partitions {
                None => (freshness(&self.project, spec, &step, &latest), None),
                Some(def) => self.partition_freshness(spec, def, &latest, &outcomes),
            };
            // A source read in place whose recorded files went away is not fresh: its readers
            // would fail on them.
            if let (Freshness::Fresh, Some(m), Some(config)) =
                (&f, latest.get(&step), self.in_place(spec))
            {
                if let Some(path) = config.vanished(&m.m.metadata) {
                    f = Freshness::Stale(vec![format!(
                        "its file {path} is gone since it was observed; `assets observe {key}` \
                         records what is there now"
                    )]);
                }
            }
            let up = spec.deps.iter().find_map(|d| outdated_by.get(d).copied());
            if f != Freshness::Fresh {
                outdated_by.insert(key, key);
            } else if let Some(u) = up {
                outdated_by.insert(key, u);
            }
            if selected.contains(key) {
                let state = match (&f, up) {
                    (Freshness::Fresh, Some(_)) => "upstream_stale",
                    _ => f.label(),
                };
                out.push(AssetStatus {
                    key: key.clone(),
                    state,
                    freshness: f,
                    upstream_outdated: up.is_some(),
                    outdated_upstream: up.cloned(),
                    latest: match &spec.partitions {
                        None => latest.get(&step).cloned(),
                        Some(_) => latest
                            .values()
                            .filter(|m| &m.m.asset_key == key)
                            .max_by_key(|m| m.id)
                            .cloned(),
                    },
                    partitions,
                    held_back: held.remove(key).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// A partitioned asset's freshness over its partitions that exist now: missing when none was
    /// materialized, fresh when all are fresh, else stale with counts (and the first stale reason).
    fn partition_freshness(
        &self,
        spec: &crate::project::AssetSpec,
        def: &crate::partitions::PartitionsDef,
        latest: &HashMap<crate::key::StepKey, Materialization>,
        outcomes: &HashMap<crate::key::StepKey, crate::store::LatestOutcome>,
    ) -> (Freshness, Option<PartitionCounts>) {
        let mut counts = PartitionCounts::default();
        let mut first_reason: Option<String> = None;
        for (p, f) in self.each_partition(spec, def, latest) {
            counts.total += 1;
            let step = crate::key::StepKey {
                asset: spec.key.clone(),
                partition: Some(p.clone()),
            };
            counts.rows += latest.get(&step).map_or(0, |m| m.m.row_count);
            match f {
                Freshness::Fresh => counts.fresh += 1,
                _ if crate::reads::failed(outcomes, &spec.key, &p) => counts.failed += 1,
                Freshness::Missing => counts.missing += 1,
                Freshness::Stale(r) => {
                    counts.stale += 1;
                    if first_reason.is_none() {
                        first_reason = r.first().map(|r| format!("[{p}] {r}"));
                    }
                }
            }
        }
        let f = if counts.fresh == counts.total {
            Freshness::Fresh
        } else if counts.missing == counts.total {
            Freshness::Missing
        } else {
            let parts: Vec<String> = [
                (counts.stale, "stale"),
                (counts.missing, "never materialized"),
                (counts.failed, "failed"),
            ]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
            let mut reasons = vec![format!(
                "of {} partitions: {}",
                counts.total,
                parts.join(", ")
            )];
            reasons.extend(first_reason);
            Freshness::Stale(reasons)
        };
        (f, Some(counts))
    }
}

/// The user running this process (`USER`, else `LOGNAME`, else `unknown`).
pub fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
