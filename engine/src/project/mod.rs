//! Projects: `spine.toml` plus asset YAML files (with SQL in `.sql` files) loaded into validated
//! [`AssetSpec`]s and an [`AssetGraph`]. Loading collects every problem it finds (malformed files, unknown
//! kinds, duplicate keys, unknown upstreams, cycles, SQL that does not parse) and reports them together.
//! Projects can also be built in code with [`ProjectBuilder`].

pub mod checks;
pub mod columns;
pub(crate) mod config;
pub mod declared_schema;
mod keys;
mod lookbacks;

pub use config::{strip_bom, ProjectConfig, Settings};

use crate::error::{DefinitionError, DefinitionErrors, Location};
use crate::graph::AssetGraph;
use crate::key::AssetKey;
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The context a `rust` asset body receives: run identity and a DataFusion session in which every
/// upstream is registered as a table named by its key (`"sales/orders"`).
pub struct RustAssetContext {
    /// The run.
    pub run_id: String,
    /// The asset being computed.
    pub key: AssetKey,
    /// A session with the upstream tables registered.
    pub session: SessionContext,
}

/// Error type returned by `rust` asset bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a `rust` asset: an async function returning record batches.
pub type RustAssetFn = Arc<
    dyn Fn(RustAssetContext) -> BoxFuture<'static, Result<Vec<RecordBatch>, BoxError>>
        + Send
        + Sync,
>;

/// How an asset is computed, as loaded from its definition.
#[derive(Clone)]
pub enum AssetBody {
    /// DataFusion SQL over upstream tables.
    Sql {
        /// The query as written, with `${var:…}` substituted.
        query: String,
        /// The query with table references rewritten to quoted asset keys.
        rewritten: String,
        /// The `.sql` file, when the query came from one.
        file: Option<PathBuf>,
    },
    /// A Rust function registered through the library API.
    Rust(RustAssetFn),
    /// The typed configuration of a kind defined outside the engine (`command`, …), made by its
    /// [`configure`](crate::kinds::AssetKind::configure) and read back with [`AssetBody::config`].
    Kind(Arc<dyn std::any::Any + Send + Sync>),
}

impl AssetBody {
    /// The kind's configuration as `T`, when this body holds one.
    pub fn config<T: 'static>(&self) -> Option<&T> {
        match self {
            AssetBody::Kind(c) => c.downcast_ref::<T>(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for AssetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssetBody::Sql { query, .. } => f.debug_struct("Sql").field("query", query).finish(),
            AssetBody::Rust(_) => f.write_str("Rust(..)"),
            AssetBody::Kind(_) => f.write_str("Kind(..)"),
        }
    }
}

/// A validated asset definition.
#[derive(Debug, Clone)]
pub struct AssetSpec {
    /// Unique key.
    pub key: AssetKey,
    /// Kind name (`sql`, `command`, `rust`, …).
    pub kind: String,
    /// Upstream assets (declared and inferred), sorted.
    pub deps: Vec<AssetKey>,
    /// Group.
    pub group: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Owners.
    pub owners: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Code version; a change makes the asset stale.
    pub code_version: String,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// First retry delay.
    pub retry_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// What a schema change of the asset's table may be.
    pub on_schema_change: spine_schemas::definitions::OnSchemaChange,
    /// How it is partitioned (none: one whole table per materialization).
    pub partitions: Option<crate::partitions::PartitionsDef>,
    /// Explicit partition mappings, by upstream (`partition_mapping:`).
    pub partition_mappings: BTreeMap<AssetKey, crate::partitions::PartitionMapping>,
    /// When the daemon materializes it by itself (`automation:`).
    pub automation: Option<crate::automation::Condition>,
    /// Data checks run on each new materialization before it is published (`checks:`).
    pub checks: Vec<checks::CheckDef>,
    /// Appends to or merges into its published table instead of replacing it (`incremental:`).
    pub incremental: Option<Incremental>,
    /// The columns it produces, declared (`schema:`): planned with by `check`, enforced on its output.
    pub declared_schema: Option<arrow::datatypes::SchemaRef>,
    /// Column lineage declared with `schema:` … `from:` (command and Rust assets; a SQL asset's is
    /// derived from its query), recorded with each materialization.
    pub declared_columns: columns::ColumnLineage,
    /// How it is computed.
    pub body: AssetBody,
    /// Where it is defined.
    pub source: Option<Location>,
    /// Its kind reads it in place (`AssetKind::reads_in_place`): observed, never copied.
    pub reads_in_place: bool,
    /// Upstreams declared in `deps` that the SQL query does not read (kept as ordering dependencies;
    /// `assets check` mentions them).
    pub unread_deps: Vec<AssetKey>,
    /// Upstreams its kind reads over a trailing span before each partition's end
    /// ([`KindConfig::lookbacks`](crate::kinds::KindConfig)); resolved into `partition_mappings`.
    pub lookbacks: BTreeMap<AssetKey, Duration>,
}

impl AssetSpec {
    /// Whether it is read in place (observed, not copied into a Delta table: no versions of its own),
    /// as its kind said when it was loaded.
    pub fn read_in_place(&self) -> bool {
        self.reads_in_place
    }

    /// A `rust` asset computed by `f`, with explicit `deps` and `code_version`.
    pub fn rust<F, Fut>(
        key: &str,
        deps: &[&str],
        code_version: &str,
        f: F,
    ) -> Result<Self, DefinitionError>
    where
        F: Fn(RustAssetContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Vec<RecordBatch>, BoxError>> + Send + 'static,
    {
        let key = parse_key(key)?;
        let deps = deps
            .iter()
            .map(|d| parse_key(d))
            .collect::<Result<Vec<_>, _>>()?;
        let body: RustAssetFn = Arc::new(move |ctx| Box::pin(f(ctx)));
        Ok(Self::new(
            key,
            "rust",
            deps,
            code_version.to_string(),
            AssetBody::Rust(body),
        ))
    }

    /// A `sql` asset; upstreams are inferred from the query.
    pub fn sql(key: &str, query: &str) -> Result<Self, DefinitionError> {
        let key = parse_key(key)?;
        let analyzed = crate::sql::analyze(query).map_err(|e| {
            DefinitionError::new("E0301", format!("SQL does not parse: {e}")).asset(key.as_str())
        })?;
        let code_version = crate::hash::short_hash(query.as_bytes());
        let deps = analyzed.tables.iter().cloned().collect();
        let body = AssetBody::Sql {
            query: query.to_string(),
            rewritten: analyzed.rewritten,
            file: None,
        };
        Ok(Self::new(key, "sql", deps, code_version, body))
    }

    fn new(
        key: AssetKey,
        kind: &str,
        mut deps: Vec<AssetKey>,
        code_version: String,
        body: AssetBody,
    ) -> Self {
        deps.sort();
        deps.dedup();
        AssetSpec {
            group: default_group(&key),
            key,
            kind: kind.to_string(),
            deps,
            tags: Vec::new(),
            owners: Vec::new(),
            description: None,
            code_version,
            retries: 0,
            retry_delay: Duration::from_secs(1),
            timeout: None,
            on_schema_change: Default::default(),
            partitions: None,
            automation: None,
            checks: Vec::new(),
            incremental: None,
            declared_schema: None,
            declared_columns: Vec::new(),
            partition_mappings: BTreeMap::new(),
            reads_in_place: false,
            body,
            source: None,
            unread_deps: Vec::new(),
            lookbacks: BTreeMap::new(),
        }
    }

    /// Partitions the asset by `def`.
    pub fn with_partitions(mut self, def: crate::partitions::PartitionsDef) -> Self {
        self.partitions = Some(def);
        self
    }

    /// Sets the group.
    pub fn with_group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }

    /// Declares the columns it produces (as `schema:` in YAML): `assets check` plans downstream SQL with
    /// them, and an output that differs is refused (E0251).
    pub fn with_schema(mut self, schema: arrow::datatypes::SchemaRef) -> Self {
        self.declared_schema = Some(schema);
        self
    }

    /// Declares where its columns come from (as `from:` in a YAML `schema:`), recorded with each
    /// materialization; for assets whose lineage Spine cannot derive (Rust functions).
    pub fn with_column_lineage(mut self, lineage: columns::ColumnLineage) -> Self {
        self.declared_columns = lineage;
        self
    }
}

fn parse_key(s: &str) -> Result<AssetKey, DefinitionError> {
    AssetKey::parse(s).map_err(|e| {
        DefinitionError::new("E0201", e.to_string()).hint("use path-like keys such as sales/orders")
    })
}

/// The default group: the first component of a nested key, else `default`.
pub fn default_group(key: &AssetKey) -> String {
    let mut parts = key.components();
    match (parts.next(), parts.next()) {
        (Some(first), Some(_)) => first.to_string(),
        _ => "default".to_string(),
    }
}

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// Resolved configuration.
    pub config: ProjectConfig,
    /// Assets by key.
    pub assets: BTreeMap<AssetKey, AssetSpec>,
    /// The dependency graph.
    pub graph: AssetGraph,
    /// Schedules (`schedules/*.yaml`).
    pub schedules: Vec<crate::schedule::ScheduleDef>,
    /// Sensors (`sensors/*.yaml`).
    pub sensors: Vec<crate::sensor::SensorDef>,
}

impl Project {
    /// The asset with `key`.
    pub fn asset(&self, key: &AssetKey) -> Option<&AssetSpec> {
        self.assets.get(key)
    }

    /// Builds a project in code.
    pub fn builder(config: ProjectConfig) -> ProjectBuilder {
        ProjectBuilder {
            config,
            assets: Vec::new(),
        }
    }

    /// Validates assets (duplicates, unknown upstreams, cycles) and builds the graph.
    pub(crate) fn assemble(
        config: ProjectConfig,
        specs: Vec<AssetSpec>,
    ) -> Result<Project, DefinitionErrors> {
        let mut errors = Vec::new();
        let mut assets: BTreeMap<AssetKey, AssetSpec> = BTreeMap::new();
        for spec in specs {
            if let Some(first) = assets.get(&spec.key) {
                let first_at = first
                    .source
                    .as_ref()
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "code".into());
                errors.push(
                    DefinitionError::new("E0202", format!("duplicate asset key '{}'", spec.key))
                        .asset(spec.key.as_str())
                        .at_opt(spec.source.clone())
                        .hint(format!(
                            "it is already defined at {first_at}; keys must be unique in a project"
                        )),
                );
                continue;
            }
            assets.insert(spec.key.clone(), spec);
        }
        errors.extend(keys::layout_errors(&assets));
        errors.extend(lookbacks::resolve(&mut assets));
        // An asset another asset's check reads (`relationships`) is materialized before it: an
        // upstream (so a change to it makes the checked asset stale and its checks run again).
        let check_reads: Vec<(AssetKey, AssetKey)> = assets
            .values()
            .flat_map(|s| {
                s.checks
                    .iter()
                    .filter_map(|c| c.kind.reads())
                    .filter(|to| assets.contains_key(*to) && **to != s.key && !s.deps.contains(*to))
                    .map(|to| (s.key.clone(), to.clone()))
            })
            .collect();
        for (key, to) in check_reads {
            if let Some(s) = assets.get_mut(&key) {
                if !s.deps.contains(&to) {
                    s.deps.push(to);
                    s.deps.sort();
                }
            }
        }
        for spec in assets.values() {
            for dep in &spec.deps {
                if assets.contains_key(dep) {
                    continue;
                }
                let mut e = DefinitionError::new("E0203", format!("unknown upstream '{dep}'"))
                    .asset(spec.key.as_str())
                    .at_opt(spec.source.clone());
                e = match closest(dep.as_str(), assets.keys().map(|k| k.as_str())) {
                    Some(s) => e.hint(format!("did you mean '{s}'?")),
                    None => e.hint("define that asset, or remove it from deps / the query"),
                };
                errors.push(e);
            }
        }
        for spec in assets.values() {
            for c in &spec.checks {
                let Some(to) = c.kind.reads().filter(|to| !assets.contains_key(*to)) else {
                    continue;
                };
                errors.push(
                    DefinitionError::new(
                        "E0230",
                        format!("checks: '{}' reads '{to}', which is not an asset", c.name),
                    )
                    .asset(spec.key.as_str())
                    .at_opt(spec.source.clone())
                    .hint(
                        "`relationships: {column, to: ASSET, field}` names an asset of the project",
                    ),
                );
            }
            for (up, mapping) in &spec.partition_mappings {
                let bad = |m: String| {
                    DefinitionError::new("E0212", format!("partition_mapping of '{up}': {m}"))
                        .asset(spec.key.as_str())
                        .at_opt(spec.source.clone())
                };
                let checked = if !spec.deps.contains(up) {
                    Err(format!("'{up}' is not an upstream of this asset"))
                } else {
                    match (
                        &spec.partitions,
                        assets.get(up).and_then(|u| u.partitions.as_ref()),
                    ) {
                        (Some(this), Some(theirs)) => mapping.check(this, theirs),
                        _ => Err("both this asset and the upstream need `partitions:`".into()),
                    }
                };
                if let Err(m) = checked {
                    errors.push(bad(m).hint("see docs/guide/partitions.md, \"Explicit mappings\""));
                }
            }
        }
        let graph = AssetGraph::build(assets.values().map(|a| (&a.key, a.deps.as_slice())));
        for cycle in graph.cycles() {
            let path: Vec<&str> = cycle.iter().map(|k| k.as_str()).collect();
            let first = &cycle[0];
            errors.push(
                DefinitionError::new("E0204", format!("dependency cycle: {}", path.join(" → ")))
                    .asset(first.as_str())
                    .at_opt(assets.get(first).and_then(|a| a.source.clone()))
                    .hint("assets must form a DAG; remove one of these dependencies"),
            );
        }
        if errors.is_empty() {
            Ok(Project {
                config,
                assets,
                graph,
                schedules: Vec::new(),
                sensors: Vec::new(),
            })
        } else {
            Err(DefinitionErrors(errors))
        }
    }
}

/// Builds a [`Project`] from assets registered in code.
pub struct ProjectBuilder {
    config: ProjectConfig,
    assets: Vec<AssetSpec>,
}

impl ProjectBuilder {
    /// Adds an asset.
    pub fn asset(mut self, spec: AssetSpec) -> Self {
        self.assets.push(spec);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Project, DefinitionErrors> {
        Project::assemble(self.config, self.assets)
    }
}

/// The candidate closest to `name` by edit distance, if reasonably close.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(2))
        .min_by_key(|(d, c)| (*d, c.to_string()))
        .map(|(_, c)| c)
}

/// How an incremental asset's run changes its published table (`incremental:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incremental {
    /// `{strategy: append, watermark: COLUMN}`: the query's rows are added.
    Append {
        /// The column whose maximum in the table is `{{ watermark }}`.
        watermark: String,
    },
    /// `{strategy: merge, unique_key: …}`: rows whose key is in the table replace it, others are
    /// inserted, and rows matching `delete` remove it (Delta MERGE).
    Merge {
        /// The columns that identify a row (unique in the table and in each run's rows).
        unique_key: Vec<String>,
        /// Optional: the column whose maximum is `{{ watermark }}`.
        watermark: Option<String>,
        /// Optional SQL predicate over the new rows: a matching row deletes its key.
        delete: Option<String>,
    },
}

impl Incremental {
    /// The column `{{ watermark }}` is the maximum of, if any.
    pub fn watermark(&self) -> Option<&str> {
        match self {
            Incremental::Append { watermark } => Some(watermark),
            Incremental::Merge { watermark, .. } => watermark.as_deref(),
        }
    }
}
