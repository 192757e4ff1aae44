//! [`Engine`]: the facade. It loads a project, opens its run store and warehouse as an [`Instance`]
//! (the work floor's handle: `materialize`, `backfill`, `daemon`, … operate on it) and hands work to
//! it; the read layer (`reads`, `query`, `facts`) answers questions on it.

use crate::clock::{Clock, SystemClock};
use crate::error::EngineError;
use crate::instance::{fill_dynamic, uses_dynamic, Instance};
use crate::kinds::KindRegistry;
use crate::loader::load_project;
use crate::project::Project;
use crate::store::open_store;
use crate::warehouse::Warehouse;
use spine_schemas::definitions::Role;
use std::path::Path;
use std::sync::Arc;

/// A project ready to run: the facade that opens an [`Instance`] (loads the project, opens its run
/// store and warehouse) and hands work to it. Every method of [`Instance`] is one of the engine's.
#[derive(Clone)]
pub struct Engine(Instance);

impl std::ops::Deref for Engine {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.0
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
        Ok(Engine(Instance {
            project: Arc::new(project),
            store,
            warehouse,
            kinds,
            clock: Arc::new(SystemClock),
            launcher: format!("cli:{}", user_name()),
            tags: Default::default(),
        }))
    }

    /// Runs this engine records carry `tags` (`--tag KEY=VALUE`).
    pub fn with_tags(mut self, tags: std::collections::BTreeMap<String, String>) -> Self {
        self.0.tags = tags;
        self
    }

    /// Runs this engine records are launched by `who` (`ui:USER`, …) instead of `cli:USER`.
    pub fn launched_by(mut self, who: impl Into<String>) -> Self {
        self.0.launcher = who.into();
        self
    }

    /// The same engine reading time from `clock` (tests use a [`ManualClock`](crate::clock::ManualClock)).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.0.store = self.0.store.with_clock(clock.clone());
        self.0.warehouse = self.0.warehouse.with_clock(clock.clone());
        self.0.clock = clock;
        self
    }
}

/// Who acts: `SPINE_ACTOR` (a service account, a CI job, the person behind a shared login), else
/// the OS user.
pub fn actor_name() -> String {
    std::env::var("SPINE_ACTOR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(user_name)
}

impl Engine {
    /// Records a mutating action in the audit log (`store::audit`): who ([`actor_name`]), from
    /// where (the part of this engine's launcher before `:` — `cli`, `ui` — and the host), what
    /// (`action`), on what (`target`) and with which arguments (`details`).
    ///
    /// It is also where roles are enforced (`[roles]` in spine.toml): an action the actor's role
    /// does not allow ([`role_needed`]) is recorded as denied and refused (E0115), and must not be
    /// done. The CLI and the UI call it before every mutating action.
    pub async fn audit(
        &self,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) -> Result<crate::store::AuditRecord, EngineError> {
        let actor = actor_name();
        let refused = self.0.project.config.roles.as_ref().and_then(|roles| {
            let (has, needs) = (roles.role_of(&actor), role_needed(action));
            (has < needs).then_some((has, needs))
        });
        let details = match refused {
            Some((_, needs)) => {
                serde_json::json!({"denied": format!("needs {}", needs.as_str()), "request": details})
            }
            None => details,
        };
        let origin = self
            .0
            .launcher
            .split(':')
            .next()
            .unwrap_or("cli")
            .to_string();
        let entry = crate::store::NewAudit {
            actor: actor.clone(),
            origin,
            host: crate::store::host_name(),
            action: action.into(),
            target: target.into(),
            details,
        };
        let recorded = self.0.store.append_audit(&entry).await?;
        if let Some((has, needs)) = refused {
            return Err(crate::error::DefinitionError::new(
                "E0115",
                format!(
                    "not allowed: `{action}` needs the {} role; {actor} is {} {}",
                    needs.as_str(),
                    if has == Role::Admin { "an" } else { "a" },
                    has.as_str()
                ),
            )
            .hint("an admin adds you to [roles] in spine.toml (the attempt is in `assets audit`)")
            .into());
        }
        Ok(recorded)
    }

    /// The whole audit log, oldest first (read in pages).
    pub async fn audit_log(&self) -> Result<Vec<crate::store::AuditRecord>, EngineError> {
        let mut out: Vec<crate::store::AuditRecord> = Vec::new();
        loop {
            let after = out.last().map(|e| e.id).unwrap_or(0);
            let page = self.0.store.audit_entries(after, 10_000).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }
}

/// The role an action needs: admin for what changes what others read or keeps the store (publish a
/// held-back version, rollouts, optimize, vacuum, repair, gc), operator for the rest of what the
/// CLI and the UI record (running, cancelling, signalling, approving, backfilling).
pub fn role_needed(action: &str) -> Role {
    match action {
        "publish" | "rollout promote" | "rollout rollback" | "optimize" | "vacuum"
        | "doctor repair" | "gc" => Role::Admin,
        _ => Role::Operator,
    }
}

/// The user running this process (`USER`, else `LOGNAME`, else `unknown`).
pub fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
