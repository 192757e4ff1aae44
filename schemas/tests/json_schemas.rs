//! `schemas/json/` holds the contracts' JSON Schema as generated from the types: this test fails when
//! a file is stale (regenerate with `SPINE_BLESS=1 cargo test -p spine-schemas`). The schemas accept
//! what the types read and refuse what they refuse, and an older reader reads a newer event.

use serde_json::{json, Value};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
}

#[test]
fn the_checked_in_schemas_are_the_generated_ones() {
    let bless = std::env::var("SPINE_BLESS").as_deref() == Ok("1");
    let mut stale = Vec::new();
    for (name, schema) in spine_schemas::json::all() {
        let path = dir().join(format!("{name}.schema.json"));
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schema files {stale:?}: regenerate with `SPINE_BLESS=1 cargo test -p spine-schemas` and commit them"
    );
}

fn schema(name: &str) -> Value {
    spine_schemas::json::by_name(name).unwrap()
}

/// The `required` and `properties` of the schema's top object, or of `$defs/NAME`.
fn props(s: &Value, def: Option<&str>) -> (Vec<String>, Vec<String>) {
    let o = match def {
        Some(d) => &s["$defs"][d],
        None => s,
    };
    let required = o["required"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let properties = o["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    (required, properties)
}

#[test]
fn the_schemas_describe_what_the_types_read() {
    let project = schema("project");
    let (required, properties) = props(&project, None);
    assert_eq!(required, ["project"]);
    for section in [
        "state",
        "warehouse",
        "defaults",
        "limits",
        "vars",
        "targets",
        "prices",
        "executor",
        "budgets",
    ] {
        assert!(
            properties.contains(&section.to_string()),
            "{section}: {properties:?}"
        );
    }
    assert_eq!(
        project["additionalProperties"],
        json!(false),
        "typos are errors"
    );
    let asset = schema("asset");
    let (required, properties) = props(&asset, Some("AssetDef"));
    assert_eq!(required, ["key", "kind"]);
    assert!(properties.contains(&"partitions".to_string()));
    assert_eq!(
        asset["$defs"]["AssetDef"]["additionalProperties"],
        json!(true),
        "kind fields"
    );
    let event = schema("event");
    let kinds: Vec<&str> = event["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["properties"]["kind"]["const"].as_str())
        .collect();
    for k in ["run_queued", "materialization", "budget_exceeded"] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    assert!(!kinds.contains(&"unknown"), "never written: {kinds:?}");
}

#[test]
fn an_older_reader_reads_a_newer_event() {
    use spine_schemas::events::Event;
    // A field this version does not know: ignored.
    let newer = json!({"selection": null, "force": false, "steps": 3, "trace_id": "abc", "v": 2});
    let e = Event::from_stored("run_queued", &newer).unwrap();
    assert_eq!(
        e,
        Event::RunQueued {
            selection: None,
            force: false,
            steps: 3
        }
    );
    // A kind this version does not know: read as `Unknown`, not an error.
    let e = Event::from_stored("model_deployed", &json!({"model": "m", "v": 2})).unwrap();
    assert_eq!(e, Event::Unknown);
}
