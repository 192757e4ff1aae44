//! `assets checks [SELECTION]` (run checks on the latest published materializations) and
//! `assets publish KEY --version N --reason …` (release a version a failed check held back).

use crate::output::table;
use spine_engine::AssetKey;
use std::path::Path;

pub async fn run(root: &Path, selection: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection).await?;
    let checked = engine.check_latest(selection).await?;
    engine.close().await;
    let blocked = checked
        .iter()
        .any(|(_, _, outcomes)| outcomes.iter().any(|c| c.blocks()));
    if json {
        let out: Vec<serde_json::Value> = checked
            .iter()
            .map(|(step, id, outcomes)| {
                serde_json::json!({"step_id": step.to_string(), "materialization_id": id, "checks": outcomes})
            })
            .collect();
        crate::output::json(&out)?;
    } else if checked.is_empty() {
        println!("no materialized asset with checks in the selection");
    } else {
        let rows: Vec<Vec<String>> = checked
            .iter()
            .flat_map(|(step, _, outcomes)| {
                outcomes.iter().map(move |c| {
                    vec![
                        step.to_string(),
                        c.name.clone(),
                        c.severity.as_str().to_string(),
                        if c.passed { "passed" } else { "failed" }.to_string(),
                        c.failing_rows.to_string(),
                        c.error
                            .clone()
                            .or_else(|| c.samples.first().map(|s| s.to_string()))
                            .unwrap_or_default(),
                    ]
                })
            })
            .collect();
        table(
            &[
                "step",
                "check",
                "severity",
                "result",
                "failing rows",
                "first failing row / error",
            ],
            &rows,
        );
    }
    Ok(u8::from(blocked))
}

pub async fn publish(
    root: &Path,
    key: &str,
    version: Option<i64>,
    partition: Option<&str>,
    reason: &str,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, Some(key)).await?;
    let key = AssetKey::parse(key)?;
    // A source read in place has no Delta versions: its observations are recorded as version -1.
    let observed = engine
        .project()
        .asset(&key)
        .is_some_and(|a| a.read_in_place());
    let version = match (version, observed) {
        (Some(v), _) => v,
        (None, true) => -1,
        (None, false) => {
            engine.close().await;
            return Err(
                spine_engine::EngineError::from(spine_engine::DefinitionErrors(vec![
                    spine_engine::error::DefinitionError::new(
                        "E0231",
                        format!("publish {key} needs --version N"),
                    )
                    .hint("`assets run ID` of the run that failed the check names the version"),
                ]))
                .into(),
            );
        }
    };
    let result = engine.publish(&key, partition, version, reason).await;
    engine.close().await;
    let changed = result?;
    if json {
        crate::output::json(
            &serde_json::json!({"key": key, "version": version, "published": changed}),
        )?;
    } else {
        let what = if version < 0 {
            format!("{key}'s newest observation")
        } else {
            format!("{key} version {version}")
        };
        if changed {
            println!("published {what}: downstream assets read it from now on");
        } else {
            println!("{what} was published already");
        }
    }
    Ok(0)
}
