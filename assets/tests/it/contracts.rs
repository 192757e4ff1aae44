//! The contracts' JSON Schema (`schemas/json/`, printed by `assets schema`) checked by an independent
//! validator (Python's `jsonschema`, installed by .ci/run): every example project's `spine.toml` and
//! asset files are valid, a typo'd setting and an asset without `kind` are not, and `assets schema`
//! prints the checked-in files.

use crate::common::*;
use std::path::Path;

const VALIDATE: &str = r#"
import json, sys, tomllib, pathlib, yaml, jsonschema
schemas, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
project = json.loads((schemas / "project.schema.json").read_text())
asset = json.loads((schemas / "asset.schema.json").read_text())
def errors(schema, doc):
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
out = {"checked": 0, "errors": {}, "bad": {}}
for toml in sorted(root.glob("*/spine.toml")):
    out["checked"] += 1
    e = errors(project, tomllib.loads(toml.read_text()))
    if e: out["errors"][str(toml)] = e
    for f in sorted(list((toml.parent / "assets").rglob("*.yaml")) + list((toml.parent / "assets").rglob("*.yml"))):
        out["checked"] += 1
        e = errors(asset, yaml.safe_load(f.read_text()))
        if e: out["errors"][str(f)] = e
out["bad"]["typo"] = errors(project, {"project": {"name": "x"}, "defaults": {"retires": 3}})
out["bad"]["no_kind"] = errors(asset, {"key": "a", "query": "SELECT 1"})
out["bad"]["executor"] = errors(project, {"project": {"name": "x"}, "executor": {"kind": "k8s"}})
print(json.dumps(out))
"#;

#[test]
fn example_projects_are_valid_against_the_schemas_and_typos_are_not() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let v = python_json(
        VALIDATE,
        &[
            repo.join("schemas/json").display().to_string(),
            repo.join("examples").display().to_string(),
        ],
    );
    assert!(v["checked"].as_i64().unwrap() >= 10, "{v}");
    assert_eq!(v["errors"], serde_json::json!({}), "{v}");
    for bad in ["typo", "no_kind", "executor"] {
        assert!(
            !v["bad"][bad].as_array().unwrap().is_empty(),
            "{bad} must be invalid: {v}"
        );
    }
}

#[test]
fn assets_schema_prints_the_checked_in_files() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = Project::new(&[]);
    for name in ["project", "asset", "event", "command_message"] {
        let printed = p.run(&["schema", name]).ok().stdout.clone();
        let file =
            std::fs::read_to_string(repo.join(format!("schemas/json/{name}.schema.json"))).unwrap();
        assert_eq!(printed, file, "{name}");
    }
    let r = p.run(&["schema", "nope"]);
    r.code(2);
    assert!(
        r.stderr.contains("project, asset, event, command_message"),
        "{}",
        r.stderr
    );
}
