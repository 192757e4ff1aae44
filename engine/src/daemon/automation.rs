//! Deciding conditions for step keys from the store's state, and the engine's entry points: the
//! steps the daemon should request now, and why (or why not) for one step.

use crate::automation::Condition;
use crate::error::{DefinitionError, EngineError};
use crate::instance::Instance;
use crate::key::{AssetKey, PartitionKey, StepKey};
use crate::project::{AssetSpec, Project};
use crate::staleness::{freshness, short, Freshness};
use crate::store::{LatestOutcome, Materialization, RunStatus, StepStatus};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// One condition's verdict for one step key, with its parts'.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    /// The condition, as it reads.
    pub condition: String,
    /// Whether it holds.
    pub value: bool,
    /// Why.
    pub reason: String,
    /// Its parts (for `and`, `or`, `not`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Evaluation>,
}

/// What conditions are decided from.
pub(crate) struct Facts<'a> {
    pub project: &'a Project,
    pub latest: HashMap<StepKey, Materialization>,
    pub outcomes: HashMap<StepKey, LatestOutcome>,
    /// Step keys that a queued or running run plans and has not finished.
    pub in_progress: HashSet<StepKey>,
    pub now: DateTime<Utc>,
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Facts<'_> {
    /// The step's latest attempt failed (or was skipped) after `since` (its data's newest input).
    fn failed_after(&self, step: &StepKey, since: Option<&str>) -> Option<String> {
        let o = self.outcomes.get(step)?;
        let failed = matches!(o.status, StepStatus::Failed | StepStatus::Skipped);
        (failed && since.is_none_or(|s| o.finished_at.as_str() > s)).then(|| o.finished_at.clone())
    }

    /// The newest materialization time among the upstream steps `step` reads.
    fn newest_upstream(&self, spec: &AssetSpec, step: &StepKey) -> Option<String> {
        crate::upstream::upstreams(self.project, spec, step)
            .iter()
            .flat_map(|u| match u.steps() {
                Some(steps) => steps
                    .iter()
                    .filter_map(|s| self.latest.get(s).map(|m| m.created_at.clone()))
                    .collect::<Vec<_>>(),
                None => self
                    .latest
                    .values()
                    .filter(|m| &m.m.asset_key == u.asset())
                    .map(|m| m.created_at.clone())
                    .collect(),
            })
            .max()
    }

    /// An upstream step that is missing, or in progress, if any.
    fn upstream_not_ready(&self, spec: &AssetSpec, step: &StepKey) -> Option<String> {
        for u in crate::upstream::upstreams(self.project, spec, step) {
            let steps = match u.steps() {
                Some(s) => s,
                None => {
                    let any = self.latest.keys().any(|k| &k.asset == u.asset());
                    if !any {
                        return Some(format!("upstream '{}' was never materialized", u.asset()));
                    }
                    continue;
                }
            };
            for s in steps {
                if self.in_progress.contains(&s) {
                    return Some(format!("upstream '{s}' is being materialized"));
                }
                if !self.latest.contains_key(&s) {
                    return Some(format!("upstream '{s}' was never materialized"));
                }
            }
        }
        None
    }
}

fn verdict(c: &Condition, value: bool, reason: impl Into<String>) -> Evaluation {
    Evaluation {
        condition: c.label(),
        value,
        reason: reason.into(),
        children: Vec::new(),
    }
}

impl Condition {
    /// Decides the condition for `step` of `spec`.
    pub(crate) fn evaluate(&self, f: &Facts, spec: &AssetSpec, step: &StepKey) -> Evaluation {
        let busy = f.in_progress.contains(step);
        match self {
            Condition::OnMissing => match f.latest.get(step) {
                Some(m) => verdict(self, false, format!("materialized in run {}", short(m.m.run_id.as_str()))),
                None if busy => verdict(self, false, "missing, but a queued or running run will materialize it"),
                None => match f.failed_after(step, None) {
                    Some(t) => verdict(self, false, format!("missing, but its latest attempt failed ({t}); materialize it by hand to try again")),
                    None => verdict(self, true, "never materialized"),
                },
            },
            Condition::Eager => {
                let fresh = freshness(f.project, spec, step, &f.latest);
                let why = match &fresh {
                    Freshness::Fresh => return verdict(self, false, "fresh"),
                    Freshness::Missing => "never materialized".to_string(),
                    Freshness::Stale(r) => r.join("; "),
                };
                if busy {
                    return verdict(self, false, format!("{why}, but a queued or running run will materialize it"));
                }
                if let Some(up) = f.upstream_not_ready(spec, step) {
                    return verdict(self, false, format!("{why}, but {up}"));
                }
                match f.failed_after(step, f.newest_upstream(spec, step).as_deref()) {
                    Some(t) => verdict(self, false, format!("{why}, but its latest attempt failed ({t}) after its upstreams' data; it waits for new upstream data or a manual run")),
                    None => verdict(self, true, why),
                }
            }
            Condition::OnCron { cron, .. } => {
                let last = f.latest.get(step).map(|m| m.created_at.clone());
                let failed = f.outcomes.get(step).map(|o| o.finished_at.clone());
                let since = [last.clone(), failed].into_iter().flatten().max();
                let Some(since) = since.as_deref().and_then(at) else {
                    return if busy {
                        verdict(self, false, "never materialized, but a run in progress will materialize it")
                    } else {
                        verdict(self, true, "never materialized")
                    };
                };
                match cron.ticks_between(since, f.now, 1).first() {
                    None => verdict(self, false, format!("no tick since its latest attempt ({}); next {}", since.to_rfc3339(), cron.next_after(f.now).map(|t| t.to_rfc3339()).unwrap_or_default())),
                    Some(_) if busy => verdict(self, false, "a tick passed, but a queued or running run will materialize it"),
                    Some(t) => verdict(self, true, format!("a tick passed at {} since its latest attempt", t.to_rfc3339())),
                }
            }
            Condition::And(parts) | Condition::Or(parts) => {
                let children: Vec<Evaluation> =
                    parts.iter().map(|p| p.evaluate(f, spec, step)).collect();
                let n = children.iter().filter(|c| c.value).count();
                let value = match self {
                    Condition::And(_) => n == children.len(),
                    _ => n > 0,
                };
                Evaluation {
                    condition: self.label(),
                    value,
                    reason: format!("{n} of {} hold", children.len()),
                    children,
                }
            }
            Condition::Not(inner) => {
                let child = inner.evaluate(f, spec, step);
                Evaluation {
                    condition: self.label(),
                    value: !child.value,
                    reason: format!("{} is {}", child.condition, child.value),
                    children: vec![child],
                }
            }
        }
    }
}

impl Instance {
    /// What conditions are decided from, read from the store now.
    pub(crate) async fn automation_facts(&self) -> Result<Facts<'_>, EngineError> {
        let mut in_progress = HashSet::new();
        for run in self.store.active_runs().await? {
            if run.status == RunStatus::Queued || run.status == RunStatus::Running {
                for s in self.store.steps(&run.run_id).await? {
                    if !s.status.is_terminal() {
                        in_progress.insert(s.step_key());
                    }
                }
            }
        }
        Ok(Facts {
            project: &self.project,
            latest: self.store.latest_materializations().await?,
            outcomes: self.store.latest_step_outcomes(None).await?,
            in_progress,
            now: self.clock.now(),
        })
    }

    /// The step keys whose asset's automation condition holds now, in dependency order.
    pub async fn automation_requests(&self) -> Result<Vec<StepKey>, EngineError> {
        if self.project.assets.values().all(|a| a.automation.is_none()) {
            return Ok(Vec::new());
        }
        let facts = self.automation_facts().await?;
        let order = self.project.graph.topological_order().unwrap_or_default();
        let mut out = Vec::new();
        for key in order {
            let spec = &self.project.assets[key];
            let Some(cond) = &spec.automation else {
                continue;
            };
            for step in self.step_keys_now(spec) {
                if cond.evaluate(&facts, spec, &step).value {
                    out.push(step);
                }
            }
        }
        Ok(out)
    }

    fn step_keys_now(&self, spec: &AssetSpec) -> Vec<StepKey> {
        match &spec.partitions {
            None => vec![StepKey::whole(spec.key.clone())],
            Some(def) => def
                .keys(self.clock.now())
                .into_iter()
                .map(|p| StepKey {
                    asset: spec.key.clone(),
                    partition: Some(p),
                })
                .collect(),
        }
    }

    /// Why `key` (at `partition`; default: its latest partition) would or would not be materialized by
    /// the daemon now. E0402 for an unknown asset, E0418 for one without `automation:`, E0411 for a
    /// partition it does not have.
    pub async fn explain_automation(
        &self,
        key: &str,
        partition: Option<&str>,
    ) -> Result<(StepKey, Evaluation), EngineError> {
        crate::selection::select(&self.project, Some(key))?;
        let key = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
        let spec = &self.project.assets[&key];
        let Some(cond) = &spec.automation else {
            return Err(DefinitionError::new(
                "E0418",
                format!("asset '{key}' has no automation condition"),
            )
            .hint("add e.g. `automation: eager` to its YAML; `assets list` shows assets")
            .into());
        };
        let step = match (&spec.partitions, partition) {
            (None, _) => StepKey::whole(key.clone()),
            (Some(def), Some(p)) => {
                let p = PartitionKey(p.to_string());
                def.check(&p, self.clock.now())
                    .map_err(|m| DefinitionError::new("E0411", format!("asset '{key}': {m}")))?;
                StepKey {
                    asset: key.clone(),
                    partition: Some(p),
                }
            }
            (Some(_), None) => self.step_keys_now(spec).pop().ok_or_else(|| {
                DefinitionError::new("E0411", format!("asset '{key}' has no partition yet"))
            })?,
        };
        let facts = self.automation_facts().await?;
        let eval = cond.evaluate(&facts, spec, &step);
        Ok((step, eval))
    }
}
