//! Definition files: `spine.toml` ([`ProjectFile`]) and the common fields of asset YAML definitions ([`AssetDef`]).
//! Unknown fields are rejected so a typo is an error, not a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `spine.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// `[project]`: name and where asset definitions live.
    pub project: ProjectSection,
    /// `[state]`: the run store.
    #[serde(default)]
    pub state: StateSection,
    /// `[warehouse]`: where asset tables are written.
    #[serde(default)]
    pub warehouse: WarehouseSection,
    /// `[defaults]`: per-asset settings used when an asset does not set its own.
    #[serde(default)]
    pub defaults: DefaultsSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[vars]`: values substituted into SQL and commands as `${var:NAME}`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `[targets.NAME]`: named overrides of `[state]`, `[warehouse]` and `[vars]` (dbt's targets),
    /// chosen with `--target NAME` or `SPINE_TARGET`.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetSection>,
    /// `[prices."MODEL"]`: what a model's tokens cost (agents' and evals' costs and budgets).
    #[serde(default)]
    pub prices: BTreeMap<String, PriceSection>,
    /// `[executor]`: where steps run (in this process, or as Temporal activities).
    #[serde(default)]
    pub executor: ExecutorSection,
    /// `[budgets]`: what every run's steps may pay together for model calls.
    #[serde(default)]
    pub budgets: BudgetsSection,
    /// `[roles]`: who may do what (without it, everyone is an admin).
    #[serde(default)]
    pub roles: Option<RolesSection>,
    /// `[guardrails]`: personal data masked wherever text is logged or stored.
    #[serde(default)]
    pub guardrails: GuardrailsSection,
}

/// `[guardrails]`: PII patterns; each match in logged or stored text (log lines, events, errors,
/// check samples) is replaced by `[NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsSection {
    /// Built-in patterns: `email`, `phone`, `card`.
    #[serde(default)]
    pub pii: Vec<String>,
    /// Your own, by name: `employee_id = "EMP-[0-9]{6}"` masks as `[employee_id]`.
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
}

/// `[roles]`: the people (`SPINE_ACTOR`, else the OS user) of each role. A viewer reads; an
/// operator also runs, cancels, signals, approves and backfills; an admin also publishes held-back
/// versions, rolls out, optimizes, vacuums, repairs and prunes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesSection {
    /// Admins.
    #[serde(default)]
    pub admin: Vec<String>,
    /// Operators.
    #[serde(default)]
    pub operator: Vec<String>,
    /// Viewers (everyone not named is `default`'s role).
    #[serde(default)]
    pub viewer: Vec<String>,
    /// The role of everyone not named (default `viewer`).
    #[serde(default)]
    pub default: Role,
}

/// What a person may do, each role including the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads: lists, status, lineage, logs, SQL.
    #[default]
    Viewer,
    /// Runs and controls work: materialize, backfill, cancel, rerun, signal, approve.
    Operator,
    /// Changes what others read and keeps the store: publish, rollout, optimize, vacuum, repair, gc.
    Admin,
}

impl Role {
    /// As written in `[roles]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl RolesSection {
    /// `who`'s role: the highest role that names them, else `default`.
    pub fn role_of(&self, who: &str) -> Role {
        let named = |list: &[String]| list.iter().any(|p| p == who);
        if named(&self.admin) {
            Role::Admin
        } else if named(&self.operator) {
            Role::Operator
        } else if named(&self.viewer) {
            Role::Viewer
        } else {
            self.default
        }
    }
}

/// `[budgets]`: a run's budgets (a run's `budget_tokens` / `budget_cost` tags override them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetsSection {
    /// Tokens a run's agent steps may use together.
    #[serde(default)]
    pub run_tokens: Option<i64>,
    /// What they may cost together (by `[prices]`).
    #[serde(default)]
    pub run_cost: Option<f64>,
}

/// `[executor]`: where the steps of a run execute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// `in_process` (default) or `temporal`.
    #[serde(default)]
    pub kind: ExecutorKind,
    /// Temporal's frontend, `host:port` (default: `TEMPORAL_ADDRESS`, else `127.0.0.1:7233`).
    #[serde(default)]
    pub address: Option<String>,
    /// Temporal namespace (default `default`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The task queue steps are handed to (default `spine`).
    #[serde(default)]
    pub task_queue: Option<String>,
    /// How long a worker may go without a heartbeat before its task is delivered to another
    /// (default `30s`).
    #[serde(default)]
    pub heartbeat_timeout: Option<String>,
    /// The longest a step's task may take, retries by Temporal included (default `24h`).
    #[serde(default)]
    pub step_timeout: Option<String>,
}

/// Where steps execute.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// In the process that executes the run (`assets materialize`, `assets worker`).
    #[default]
    InProcess,
    /// As activities on a Temporal task queue, executed by `assets worker --temporal`.
    Temporal,
}

/// `[prices."MODEL"]`: a model's price per 1,000 tokens, in whatever currency the team budgets in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceSection {
    /// Per 1,000 prompt (input) tokens.
    #[serde(default)]
    pub prompt_per_1k: f64,
    /// Per 1,000 completion (output) tokens.
    #[serde(default)]
    pub completion_per_1k: f64,
}

/// `[targets.NAME]`: what a target changes. The warehouse's `options` are merged key by key over
/// `[warehouse.options]`, `vars` over `[vars]`; `url` and `fsync` replace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// `[targets.NAME.state]`.
    #[serde(default)]
    pub state: StateSection,
    /// `[targets.NAME.warehouse]`.
    #[serde(default)]
    pub warehouse: WarehouseSection,
    /// `[targets.NAME.vars]`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// `[project]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// Project name.
    pub name: String,
    /// Folder (relative to `spine.toml`) searched recursively for `*.yaml` / `*.yml` asset files.
    #[serde(default = "default_assets_dir")]
    pub assets: String,
    /// Keep the project's files inside it: the assets folder and every local source must lie in the
    /// project folder or the warehouse (a project is code and otherwise reads what its user can).
    #[serde(default)]
    pub confine: bool,
}

fn default_assets_dir() -> String {
    "assets".to_string()
}

/// `[state]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// Run-store URL, e.g. `sqlite://.spine/state.db` (default) or `postgres://…`.
    pub url: Option<String>,
}

/// `[warehouse]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseSection {
    /// Warehouse root: a relative or absolute path, `file:///…`, or `s3://bucket/prefix` (with
    /// `options`: `aws_endpoint`, `aws_region`, credentials; or the standard AWS variables).
    pub url: Option<String>,
    /// Object-store options (e.g. `aws_endpoint`, `aws_region`); values may use `${env:NAME}`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Local warehouses: fsync data files, commits and folders so a commit survives power loss
    /// (default true).
    pub fsync: Option<bool>,
}

/// `[limits]`: resources a run or query may use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory for query execution (DataFusion's pool; sorts and aggregations spill to disk beyond it),
    /// e.g. `2GiB`, `512MiB`; default: half of the machine's memory. `SPINE_MEMORY_LIMIT` overrides.
    pub memory: Option<String>,
    /// Steps at once across every worker, by asset tag: `"warehouse=heavy" = 2` lets at most two
    /// steps of assets tagged `warehouse=heavy` run at a time.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, usize>,
}

/// `[defaults]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    /// Retries after a failed attempt.
    pub retries: Option<u32>,
    /// First retry delay (doubles each attempt, with jitter), e.g. `500ms`, `2s`.
    pub retry_delay: Option<String>,
    /// Per-attempt timeout, e.g. `30s`, `10m`, `1h`.
    pub timeout: Option<String>,
    /// Steps run at once.
    pub concurrency: Option<usize>,
    /// How long a step claim holds without renewal, e.g. `60s`: a dead worker's steps are taken
    /// over this long after its last renewal.
    pub lease: Option<String>,
    /// How often a working step renews its claim, e.g. `20s` (less than `lease`).
    pub renew_every: Option<String>,
}

/// The fields every asset definition has, whatever its kind. An asset's YAML mapping holds these plus
/// the fields of its kind (`sql:`/`query:` for `sql`, `command:`/`env:`/… for `command`), which the
/// kind parses itself (`spine_engine::kinds::AssetKind::configure`). A file is a single mapping, or
/// `assets:` with a list of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetDef {
    /// Path-like key, unique in the project: `sales/orders`.
    pub key: String,
    /// How it is computed: `sql`, `command`, or a kind registered by a plugin crate.
    pub kind: String,
    /// Upstream asset keys. For `sql` assets they are inferred from the query and checked against this list.
    #[serde(default)]
    pub deps: Vec<String>,
    /// Group name (default: the key's first component for nested keys, else `default`).
    pub group: Option<String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owners (people or teams).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Human description.
    pub description: Option<String>,
    /// Explicit code version; default: a hash of the SQL / command and the files it names.
    pub code_version: Option<String>,
    /// Retries after a failed attempt.
    pub retries: Option<u32>,
    /// First retry delay, e.g. `1s`.
    pub retry_delay: Option<String>,
    /// Per-attempt timeout, e.g. `10m`.
    pub timeout: Option<String>,
    /// What to do when a new materialization's schema differs from the table's (default `fail` for
    /// dropped columns and changed types).
    pub on_schema_change: Option<OnSchemaChange>,
    /// How the asset is partitioned (`{daily: {start: 2026-01-01}}`, `{static: [eu, us]}`, …); validated
    /// by the engine's partitions module.
    pub partitions: Option<serde_json::Value>,
    /// When the daemon materializes the asset by itself (`eager`, `on_missing`, `{on_cron: …}`, combined
    /// with `{and: […]}`, `{or: […]}`, `{not: …}`); validated by the engine's automation module.
    pub automation: Option<serde_json::Value>,
    /// Explicit partition mappings per upstream (`{events: {last: 7}}`, `{offset: -1}`,
    /// `{map: {emea: [de, fr]}}`); validated by the engine's partitions module.
    #[serde(default)]
    pub partition_mapping: std::collections::BTreeMap<String, serde_json::Value>,
    /// Data checks run on every new materialization (`- not_null: [id]`, `- unique: id`,
    /// `- accepted_values: {column, values}`, `- relationships: {column, to, field}`,
    /// `- row_count: {min, max, max_change_pct}`, `- freshness: {column, max_age}`,
    /// `- expression: SQL`, `- sql: QUERY`; each with optional `severity` and `name`); validated by
    /// the engine's checks module. A failed `error` check keeps the new version unpublished.
    pub checks: Option<serde_json::Value>,
    /// Incremental materialization: `{strategy: append, watermark: COLUMN}` appends the rows the query
    /// returns (`{{ watermark }}` in SQL: the column's maximum in the published table, NULL on the first
    /// run) instead of replacing the table; validated by the engine.
    pub incremental: Option<serde_json::Value>,
    /// The columns the asset produces (`- COLUMN: TYPE`, …), known without running it: `assets check`
    /// plans downstream SQL with it, and a materialization whose output differs is refused; a CSV or
    /// JSON source reads its files with it. Validated by the engine (E0250).
    pub schema: Option<serde_json::Value>,
}

/// What to do when a materialization's schema differs from the asset table's current schema (as dbt's
/// `on_schema_change`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    /// Refuse dropped columns and changed types (added columns are fine); nothing is committed.
    #[default]
    Fail,
    /// Also accept widening type changes (Int32 → Int64, Float32 → Float64, integers → Float64,
    /// Utf8 → LargeUtf8); refuse drops and narrowing.
    Evolve,
    /// Accept any schema: the table's schema is replaced.
    Overwrite,
}

impl OnSchemaChange {
    /// `fail`, `evolve` or `overwrite`, as written.
    pub fn as_str(self) -> &'static str {
        match self {
            OnSchemaChange::Fail => "fail",
            OnSchemaChange::Evolve => "evolve",
            OnSchemaChange::Overwrite => "overwrite",
        }
    }
}
