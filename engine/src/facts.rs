//! The facts `status:` and `state:` selectors resolve with: each asset's status from the run store,
//! and its code version against a manifest saved from another checkout (`assets list --json`), as
//! dbt's `state:modified` compares with another run's `manifest.json` (slim CI).

use crate::engine::Engine;
use crate::error::{DefinitionError, EngineError};
use crate::key::AssetKey;
use crate::selection::Facts;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

impl Engine {
    /// The assets `expr` selects, with the store's status and the manifest at `state` (when the
    /// expression uses `status:` or `state:`).
    pub async fn select_with_facts(
        &self,
        expr: &str,
        state: Option<&Path>,
    ) -> Result<BTreeSet<AssetKey>, EngineError> {
        let parsed = crate::selection::parse(expr)?;
        let (status, _) = parsed.needs_facts();
        let facts = self.facts(status, state).await?;
        Ok(parsed.resolve_in(&self.project, Some(&facts))?)
    }

    async fn facts(&self, status: bool, state: Option<&Path>) -> Result<Facts, EngineError> {
        let mut facts = Facts::default();
        if status {
            for s in self.status(None).await? {
                let mut set = BTreeSet::from([s.state.to_string()]);
                if s.partitions.as_ref().is_some_and(|p| p.failed > 0) {
                    set.insert("failed".into());
                }
                facts.status.insert(s.key, set);
            }
            for (step, outcome) in self.store.latest_step_outcomes(None).await? {
                if outcome.status == crate::store::StepStatus::Failed {
                    if let Some(set) = facts.status.get_mut(&step.asset) {
                        set.insert("failed".into());
                    }
                }
            }
        }
        if let Some(path) = state {
            facts.state = Some(self.compare_manifest(path).await?);
        }
        Ok(facts)
    }

    /// `modified` or `new` for each asset whose code version differs from `path`'s manifest (the
    /// JSON `assets list --json` prints) or that it lacks. E0423 for a manifest that cannot be read.
    async fn compare_manifest(
        &self,
        path: &Path,
    ) -> Result<HashMap<AssetKey, &'static str>, EngineError> {
        let bad = |why: String| {
            DefinitionError::new("E0423", format!("--state {}: {why}", path.display())).hint(
                "save a manifest in the other checkout with `assets list --json > manifest.json`",
            )
        };
        let text = tokio::fs::read(path)
            .await
            .map_err(|e| bad(format!("cannot read it: {e}")))?;
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("not the JSON of `assets list --json`: {e}")))?;
        let mut before: HashMap<String, String> = HashMap::new();
        for a in &listed {
            match (a["key"].as_str(), a["code_version"].as_str()) {
                (Some(k), Some(v)) => {
                    before.insert(k.to_string(), v.to_string());
                }
                _ => return Err(bad(format!("an entry without key and code_version: {a}")).into()),
            }
        }
        Ok(self
            .project
            .assets
            .values()
            .filter_map(|a| match before.get(a.key.as_str()) {
                None => Some((a.key.clone(), "new")),
                Some(v) if *v != a.code_version => Some((a.key.clone(), "modified")),
                Some(_) => None,
            })
            .collect())
    }
}
