//! `assets temporal signal|query KEY NAME [--payload JSON]`: a Temporal signal or query to the
//! workflow of a `temporal` asset — the one a parked step waits on, else the one its latest
//! materialization recorded. (`assets signal` is Spine's own: it resumes a step Spine parked.)

use crate::TemporalAction;
use spine_engine::store::StepStatus;
use spine_engine::{AssetKey, DefinitionError, StepKey};
use spine_jobs::temporal::config::TemporalConfig;
use std::path::Path;

/// The workflow id of `key`: a parked step's, else the latest materialization's.
async fn workflow_of(
    engine: &spine_engine::Engine,
    key: &AssetKey,
) -> anyhow::Result<Option<String>> {
    let reader = engine.reader();
    for run in reader.waiting_runs().await? {
        for s in reader.steps(&run.run_id).await? {
            if &s.asset_key != key || s.status != StepStatus::Waiting {
                continue;
            }
            if let Some(h) = engine.parked_handle(&run.run_id, &s.step_key()).await? {
                if let Some(id) = h["workflow_id"].as_str() {
                    return Ok(Some(id.to_string()));
                }
            }
        }
    }
    let latest = reader
        .latest_materialization(&StepKey::whole(key.clone()))
        .await?;
    Ok(latest.and_then(|m| m.m.metadata["workflow_id"].as_str().map(str::to_string)))
}

/// `assets temporal …`.
pub async fn run(root: &Path, action: TemporalAction, json: bool) -> anyhow::Result<u8> {
    let (key, name, payload, is_signal) = match &action {
        TemporalAction::Signal { key, name, payload } => (key, name, payload, true),
        TemporalAction::Query { key, name, payload } => (key, name, payload, false),
    };
    let payload = super::runs::payload(payload.as_deref())?;
    let engine = super::engine(root, None).await?;
    let asset = AssetKey::parse(key).map_err(|e| DefinitionError::new("E0201", e.to_string()))?;
    let Some(config) = engine
        .project()
        .assets
        .get(&asset)
        .and_then(|s| s.body.config::<TemporalConfig>().cloned())
    else {
        engine.close().await;
        return Err(
            DefinitionError::new("E0408", format!("'{key}' is not a `temporal` asset"))
                .hint("`assets list` shows each asset's kind")
                .into(),
        );
    };
    let id = workflow_of(&engine, &asset).await;
    engine.close().await;
    let Some(id) = id? else {
        return Err(DefinitionError::new(
            "E0408",
            format!("'{key}' has no workflow yet: materialize it first"),
        )
        .into());
    };
    if is_signal {
        spine_jobs::temporal::signal(&config, &id, name, payload.as_ref())
            .await
            .map_err(anyhow::Error::msg)?;
        if json {
            crate::output::json(&serde_json::json!({"workflow_id": id, "signal": name}))?;
        } else {
            println!("signalled '{name}' to workflow {id}");
        }
    } else {
        let answer = spine_jobs::temporal::query(&config, &id, name, payload.as_ref())
            .await
            .map_err(anyhow::Error::msg)?;
        if json {
            crate::output::json(
                &serde_json::json!({"workflow_id": id, "query": name, "answer": answer}),
            )?;
        } else {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
    }
    Ok(0)
}
