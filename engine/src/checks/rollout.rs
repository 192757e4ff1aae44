//! Rollouts: the live (newest published) version of each gated asset — one whose kind audits its
//! versions before they are published ([`crate::kinds::Audits`], an eval's gate) — with how it became
//! live, its history, and the operator's audited actions over publications: promote a held-back
//! version, roll back to an earlier one.

use super::CheckOutcome;
use crate::error::{DefinitionError, EngineError};
use crate::instance::Instance;
use crate::key::AssetKey;
use crate::store::checks::Publication;

/// One version of a gated asset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolloutVersion {
    /// Its materialization.
    pub materialization_id: i64,
    /// Its Delta version.
    pub delta_version: i64,
    /// What it is a version of: the subject version its kind recorded (`subject_version`
    /// metadata), else its code version.
    pub subject_version: String,
    /// The run that made it.
    pub run_id: String,
    /// When it was recorded.
    pub created_at: String,
    /// Readable by downstream assets.
    pub published: bool,
    /// The newest published version: what downstream reads.
    pub live: bool,
    /// Its checks (the gate's included), as recorded.
    pub checks: Vec<CheckOutcome>,
}

/// A gated asset's rollout state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollout {
    /// The asset.
    pub asset: AssetKey,
    /// The live version, if any.
    pub live: Option<RolloutVersion>,
    /// Why it is live: the latest publication record that made it so (none: it passed its gate).
    pub because: Option<Publication>,
    /// Versions newer than the live one that are not published (held back, or retracted).
    pub pending: Vec<RolloutVersion>,
}

/// How many versions a history reads.
const HISTORY: i64 = 200;

impl Instance {
    /// The assets whose kind audits their versions, in key order.
    pub fn gated_assets(&self) -> Vec<AssetKey> {
        self.project
            .assets
            .values()
            .filter(|s| {
                self.kinds
                    .get(&s.kind)
                    .is_some_and(|k| k.audits(&s.body).is_some())
            })
            .map(|s| s.key.clone())
            .collect()
    }

    fn gated(&self, key: &AssetKey) -> Result<(), EngineError> {
        self.known_asset(key)?;
        if self.gated_assets().contains(key) {
            Ok(())
        } else {
            Err(DefinitionError::new("E0425", format!("{key} has no gate: its versions are not rolled out"))
                .hint("rollouts are of assets whose kind gates their versions (an eval with `gate:`); `assets publish` handles a held-back version of any asset")
                .into())
        }
    }

    /// The versions of gated `key`, newest first, and its publication records, oldest first.
    pub async fn rollout_history(
        &self,
        key: &AssetKey,
    ) -> Result<(Vec<RolloutVersion>, Vec<Publication>), EngineError> {
        self.gated(key)?;
        let ms = self.store.materializations(key, HISTORY).await?;
        let live = ms.iter().find(|m| m.m.published).map(|m| m.id);
        let mut out = Vec::new();
        for m in ms {
            let checks = self
                .store
                .check_results(m.id)
                .await?
                .into_iter()
                .map(|c| c.outcome)
                .collect();
            out.push(RolloutVersion {
                materialization_id: m.id,
                delta_version: m.m.delta_version,
                subject_version: m.m.metadata["subject_version"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| m.m.code_version.clone()),
                run_id: m.m.run_id.to_string(),
                created_at: m.created_at.clone(),
                published: m.m.published,
                live: Some(m.id) == live,
                checks,
            });
        }
        Ok((out, self.store.publications(key).await?))
    }

    /// The rollout state of every gated asset.
    pub async fn rollouts(&self) -> Result<Vec<Rollout>, EngineError> {
        let mut out = Vec::new();
        for key in self.gated_assets() {
            let (versions, publications) = self.rollout_history(&key).await?;
            let live = versions.iter().find(|v| v.live).cloned();
            let pending = versions.iter().take_while(|v| !v.live).cloned().collect();
            let because = live.as_ref().and_then(|l| {
                publications
                    .iter()
                    .rev()
                    .find(|p| p.materialization_id >= l.materialization_id)
                    .filter(|p| {
                        p.materialization_id == l.materialization_id || p.action == "retract"
                    })
                    .cloned()
            });
            out.push(Rollout {
                asset: key,
                live,
                because,
                pending,
            });
        }
        Ok(out)
    }

    /// The Delta version a rollback of gated `key` returns to: the published one before the live one.
    pub async fn rollback_target(&self, key: &AssetKey) -> Result<i64, EngineError> {
        self.gated(key)?;
        let ms = self.store.materializations(key, HISTORY).await?;
        let mut published = ms.iter().filter(|m| m.m.published);
        published.next();
        match published.next() {
            Some(m) => Ok(m.m.delta_version),
            None => Err(DefinitionError::new(
                "E0425",
                format!("{key} has no earlier published version to roll back to"),
            )
            .hint(format!(
                "`assets rollout history {key}` lists its versions; name one with --to"
            ))
            .into()),
        }
    }

    /// Makes the version of gated `key` that wrote Delta `version` live, as the operator's audited
    /// action: published if held back, and every published version newer than it retracted (a
    /// rollback). Returns whether it was published now and the Delta versions retracted.
    pub async fn make_live(
        &self,
        key: &AssetKey,
        version: i64,
        reason: &str,
        actor: &str,
    ) -> Result<(bool, Vec<i64>), EngineError> {
        self.gated(key)?;
        if reason.trim().is_empty() {
            return Err(DefinitionError::new(
                "E0425",
                "a rollout action needs a reason: --reason is empty",
            )
            .hint("say why, e.g. --reason \"the new prompt regressed on refunds\"; it is recorded")
            .into());
        }
        let Some(m) = self.store.materialization_at(key, None, version).await? else {
            return Err(DefinitionError::new(
                "E0425",
                format!("no version of {key} wrote Delta version {version}"),
            )
            .hint(format!("`assets rollout history {key}` lists its versions"))
            .into());
        };
        let ms = self.store.materializations(key, HISTORY).await?;
        let (published, retracted) = self.store.make_live(m.id, reason, actor).await?;
        let retracted = ms
            .iter()
            .filter(|x| retracted.contains(&x.id))
            .map(|x| x.m.delta_version)
            .collect();
        Ok((published, retracted))
    }
}
