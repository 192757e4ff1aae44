//! `assets features get VIEW ENTITY…`: entities' newest values from the online store (Redis), all
//! from one snapshot. VIEW is an `online_snapshot` asset, or the feature view exactly one of them
//! serves; the URL comes from the variable the asset names (`url_env`).

use spine_engine::key::AssetKey;
use spine_engine::DefinitionError;
use spine_features::online::{get as read, OnlineConfig};
use std::path::Path;

pub async fn get(root: &Path, view: &str, entities: &[String], json: bool) -> anyhow::Result<u8> {
    let kinds = super::kinds();
    let project = spine_engine::loader::load_project(root, &kinds)?;
    let key = AssetKey::parse(view).map_err(|e| DefinitionError::new("E0402", e.to_string()))?;
    let online: Vec<(&AssetKey, &OnlineConfig)> = project
        .assets
        .values()
        .filter_map(|s| s.body.config::<OnlineConfig>().map(|c| (&s.key, c)))
        .filter(|(k, c)| **k == key || c.from == key)
        .collect();
    let (asset, config) = match online.as_slice() {
        [one] => *one,
        [] if !project.assets.contains_key(&key) => {
            let mut e = DefinitionError::new("E0402", format!("no asset '{key}' in this project"));
            if let Some(c) =
                spine_engine::project::closest(view, project.assets.keys().map(|k| k.as_str()))
            {
                e = e.hint(format!("did you mean '{c}'?"));
            }
            return Err(e.into());
        }
        [] => {
            return Err(DefinitionError::new(
                "E0424",
                format!("'{key}' is not served online: no `online_snapshot` asset reads it"),
            )
            .hint("add one: {key: online/NAME, kind: online_snapshot, from: VIEW, entities: [..], timestamp: ..}")
            .into())
        }
        many => {
            let names: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
            return Err(DefinitionError::new(
                "E0424",
                format!("'{key}' is served by several online snapshots: {}", names.join(", ")),
            )
            .hint("name the one to read")
            .into());
        }
    };
    let url = std::env::var(&config.url_env).map_err(|_| {
        DefinitionError::new(
            "E0424",
            format!(
                "{} is not set: it holds the online store's redis:// URL",
                config.url_env
            ),
        )
        .hint(format!("export {}=redis://HOST:6379", config.url_env))
    })?;
    let keys: Vec<Vec<String>> = entities
        .iter()
        .map(|e| e.split(',').map(|p| p.trim().to_string()).collect())
        .collect();
    if let Some(e) = keys.iter().find(|k| k.len() != config.entities.len()) {
        return Err(DefinitionError::new(
            "E0424",
            format!(
                "'{}' has {} key value(s); '{asset}' is keyed by {}",
                e.join(","),
                e.len(),
                config.entities.join(", ")
            ),
        )
        .hint("write an entity's key values comma-separated, in that order")
        .into());
    }
    let Some((snapshot, values)) = read(&url, asset, &keys).await? else {
        if json {
            crate::output::json(
                &serde_json::json!({"view": asset, "snapshot": null, "entities": []}),
            )?;
        } else {
            println!("'{asset}' has no online snapshot yet: materialize it");
        }
        return Ok(1);
    };
    if json {
        let rows: Vec<serde_json::Value> = entities
            .iter()
            .zip(&values)
            .map(|(e, v)| serde_json::json!({"entity": e, "values": v}))
            .collect();
        crate::output::json(
            &serde_json::json!({"view": asset, "snapshot": snapshot, "entities": rows}),
        )?;
    } else {
        println!("{asset}  (snapshot {snapshot})");
        for (e, v) in entities.iter().zip(&values) {
            match v {
                Some(v) => println!("{e}  {v}"),
                None => println!("{e}  -  (not in the snapshot)"),
            }
        }
    }
    Ok(0)
}
