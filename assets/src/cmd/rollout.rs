//! `assets rollout status | history SUBJECT | promote SUBJECT --version N --reason R | rollback
//! SUBJECT [--to N] --reason R`: the live versions of gated assets and the operator's audited actions
//! over their publications.

use crate::RolloutAction;
use spine_engine::checks::RolloutVersion;
use spine_engine::key::AssetKey;
use spine_engine::{DefinitionError, Engine};
use std::path::Path;

fn key(text: &str) -> Result<AssetKey, DefinitionError> {
    AssetKey::parse(text).map_err(|e| DefinitionError::new("E0402", e.to_string()))
}

/// One line per check: `gate_regression ✗ regression: …`.
fn verdicts(v: &RolloutVersion) -> String {
    let failed: Vec<String> = v
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            let why = c
                .samples
                .first()
                .and_then(|s| s["why"].as_str())
                .unwrap_or_default();
            format!("{} failed: {why}", c.name)
        })
        .collect();
    if failed.is_empty() {
        format!("{} check(s) passed", v.checks.len())
    } else {
        failed.join("; ")
    }
}

pub async fn run(root: &Path, action: RolloutAction, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let result = act(&engine, action, json).await;
    engine.close().await;
    result
}

async fn act(engine: &Engine, action: RolloutAction, json: bool) -> anyhow::Result<u8> {
    match action {
        RolloutAction::Status => {
            let all = engine.rollouts().await?;
            if json {
                crate::output::json(&all)?;
                return Ok(0);
            }
            if all.is_empty() {
                println!("no gated assets (an eval with `gate:` is one)");
            }
            for r in &all {
                match &r.live {
                    Some(l) => {
                        let how = match &r.because {
                            Some(p) => format!(
                                "{} by {} at {}: {}",
                                if p.action == "retract" {
                                    "rolled back"
                                } else {
                                    "published"
                                },
                                p.actor.as_deref().unwrap_or("?"),
                                p.created_at,
                                p.reason
                            ),
                            None => format!("passed its gate at {}", l.created_at),
                        };
                        println!(
                            "{}  live: v{} (subject {})  {how}",
                            r.asset, l.delta_version, l.subject_version
                        );
                    }
                    None => println!("{}  live: none", r.asset),
                }
                for p in &r.pending {
                    println!(
                        "    waiting: v{} (subject {})  {}",
                        p.delta_version,
                        p.subject_version,
                        verdicts(p)
                    );
                }
            }
            Ok(0)
        }
        RolloutAction::History { subject } => {
            let key = key(&subject)?;
            let (versions, publications) = engine.rollout_history(&key).await?;
            if json {
                crate::output::json(
                    &serde_json::json!({"asset": key, "versions": versions, "publications": publications}),
                )?;
                return Ok(0);
            }
            for v in &versions {
                let state = match (v.live, v.published) {
                    (true, _) => "LIVE",
                    (false, true) => "published",
                    (false, false) => "held back",
                };
                println!(
                    "v{}  subject {}  {state}  run {}  {}  {}",
                    v.delta_version,
                    v.subject_version,
                    &v.run_id[..v.run_id.len().min(14)],
                    v.created_at,
                    verdicts(v)
                );
            }
            if !publications.is_empty() {
                println!("operator actions:");
                for p in &publications {
                    let v = versions
                        .iter()
                        .find(|v| v.materialization_id == p.materialization_id)
                        .map(|v| format!("v{}", v.delta_version))
                        .unwrap_or_else(|| format!("materialization {}", p.materialization_id));
                    println!(
                        "  {}  {} {v} by {}: {}",
                        p.created_at,
                        p.action,
                        p.actor.as_deref().unwrap_or("?"),
                        p.reason
                    );
                }
            }
            Ok(0)
        }
        RolloutAction::Promote {
            subject,
            version,
            reason,
        } => {
            let key = key(&subject)?;
            let (published, retracted) = engine
                .make_live(&key, version, &reason, &spine_engine::user_name())
                .await?;
            report(&key, version, published, &retracted, json)
        }
        RolloutAction::Rollback {
            subject,
            to,
            reason,
        } => {
            let key = key(&subject)?;
            let to = match to {
                Some(v) => v,
                None => engine.rollback_target(&key).await?,
            };
            let (published, retracted) = engine
                .make_live(&key, to, &reason, &spine_engine::user_name())
                .await?;
            report(&key, to, published, &retracted, json)
        }
    }
}

fn report(
    key: &AssetKey,
    version: i64,
    published: bool,
    retracted: &[i64],
    json: bool,
) -> anyhow::Result<u8> {
    if json {
        crate::output::json(
            &serde_json::json!({"asset": key, "live": version, "published": published, "retracted": retracted}),
        )?;
    } else {
        let retracted: Vec<String> = retracted.iter().map(|v| format!("v{v}")).collect();
        println!(
            "{key}: v{version} is live{}{}; downstream assets read it from their next run",
            if published { " (published now)" } else { "" },
            if retracted.is_empty() {
                String::new()
            } else {
                format!(", {} retracted", retracted.join(", "))
            }
        );
    }
    Ok(0)
}
