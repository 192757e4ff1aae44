//! The contracts as JSON Schema (draft 2020-12), generated from the types: what `schemas/json/`
//! holds (a test fails when those files are stale) and what `assets schema` prints.
//!
//! - `project` is `spine.toml`.
//! - `asset` is an asset YAML file: one definition, or `assets:` with a list of them. Its common
//!   fields are checked; each kind's own fields (`query:`, `command:`, `nodes:` …) are allowed here
//!   and checked by `assets check`.
//! - `event` is one event as publishers send it: its `kind` and the payload's fields.
//! - `command_message` is one line a `command` asset prints (the JSON-lines protocol).

use serde_json::{json, Value};

/// Every contract: its name (`schemas/json/NAME.schema.json`) and its schema.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("project", project()),
        ("asset", asset()),
        ("event", event()),
        ("command_message", command_message()),
    ]
}

/// The schema named `name`.
pub fn by_name(name: &str) -> Option<Value> {
    all().into_iter().find(|(n, _)| *n == name).map(|(_, s)| s)
}

fn titled(mut v: Value, id: &str, title: &str) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$id".into(),
            json!(format!("https://spine.dev/schemas/{id}.schema.json")),
        );
        o.insert("title".into(), json!(title));
        o.insert(
            "x-spine-schema-version".into(),
            json!(crate::SCHEMA_VERSION),
        );
    }
    v
}

/// `spine.toml`.
pub fn project() -> Value {
    let s = schemars::schema_for!(crate::definitions::ProjectFile);
    titled(s.to_value(), "project", "spine.toml")
}

/// An asset definition file.
pub fn asset() -> Value {
    let mut one = schemars::schema_for!(crate::definitions::AssetDef).to_value();
    // A kind's own fields sit beside the common ones.
    if let Some(o) = one.as_object_mut() {
        o.insert("additionalProperties".into(), json!(true));
    }
    let defs = one
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .unwrap_or_else(|| json!({}));
    let mut defs = defs;
    if let Some(d) = defs.as_object_mut() {
        let mut def = one.clone();
        if let Some(o) = def.as_object_mut() {
            o.remove("$schema");
            o.remove("title");
        }
        d.insert("AssetDef".into(), def);
    }
    titled(
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": "An asset definition file: one definition (`key:`, `kind:` …), or `assets:` with a list of them.",
            "anyOf": [
                {"$ref": "#/$defs/AssetDef"},
                {
                    "type": "object",
                    "properties": {"assets": {"type": "array", "items": {"$ref": "#/$defs/AssetDef"}}},
                    "required": ["assets"],
                    "additionalProperties": false
                }
            ],
            "$defs": defs
        }),
        "asset",
        "asset definition file",
    )
}

/// One event.
pub fn event() -> Value {
    let s = schemars::schema_for!(crate::events::Event);
    titled(s.to_value(), "event", "event")
}

/// One line of the `command` kind's JSON-lines protocol.
pub fn command_message() -> Value {
    let s = schemars::schema_for!(crate::events::CommandMessage);
    titled(s.to_value(), "command_message", "command asset message")
}
