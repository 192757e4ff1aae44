//! Reading `schedules/*.yaml` and `sensors/*.yaml` into the project's schedule and sensor
//! definitions, checked against the project (selections, dynamic sets, unique names).

use crate::error::{DefinitionError, DefinitionErrors};
use crate::project::Project;
use crate::schedule::{RawSchedule, ScheduleDef};
use crate::sensor::{RawSensor, SensorDef};
use std::path::Path;

/// Reads `schedules/*.yaml` under the project root (none when the folder does not exist) and checks
/// each against the project: a valid cron and timezone, a selection that names existing assets, unique
/// names. Every problem is E0220 with the file.
pub fn load_schedules(project: &Project) -> Result<Vec<ScheduleDef>, DefinitionErrors> {
    let (mut out, mut errors): (Vec<ScheduleDef>, Vec<DefinitionError>) = (Vec::new(), Vec::new());
    for (path, rel) in yaml_files(project, "schedules") {
        let bad = |m: String| {
            DefinitionError::new("E0220", m)
                .at(rel.clone(), None)
                .hint("see docs/guide/schedules.md for the schedule format")
        };
        for parsed in read_items::<RawSchedule>(&path, "schedules") {
            match parsed.and_then(ScheduleDef::parse) {
                Err(m) => errors.push(bad(m)),
                Ok(s) => {
                    if let Err(e) = crate::selection::select(project, s.selection.as_deref()) {
                        errors.push(bad(format!("schedule '{}': {e}", s.name)));
                    } else if out.iter().any(|o| o.name == s.name) {
                        errors.push(bad(format!("two schedules are named '{}'", s.name)));
                    } else {
                        out.push(s);
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(DefinitionErrors(errors))
    }
}

/// The YAML files of `folder` under the project root, sorted, each with its path relative to the root
/// (none when the folder does not exist).
pub(crate) fn yaml_files(
    project: &Project,
    folder: &str,
) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let Ok(rd) = std::fs::read_dir(project.config.root.join(folder)) else {
        return Vec::new();
    };
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&project.config.root)
                .unwrap_or(&p)
                .to_path_buf();
            (p, rel)
        })
        .collect()
}

/// One item mapping, or `LIST_KEY: [...]` (`schedules:`, `sensors:`), each deserialized.
pub(crate) fn read_items<T: serde::de::DeserializeOwned>(
    path: &Path,
    list_key: &str,
) -> Vec<Result<T, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![Err(format!("cannot read: {e}"))],
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![Err(format!("malformed YAML: {e}"))],
    };
    let items = match value {
        serde_yaml::Value::Mapping(mut m) if m.contains_key(list_key) => match m.remove(list_key) {
            Some(serde_yaml::Value::Sequence(s)) if m.is_empty() => s,
            _ => {
                return vec![Err(format!(
                    "`{list_key}:` must be a list, alone in its file"
                ))]
            }
        },
        other => vec![other],
    };
    items
        .into_iter()
        .map(|v| serde_yaml::from_value(v).map_err(|e| format!("{e}")))
        .collect()
}

/// Reads `sensors/*.yaml` under the project root (none when the folder does not exist) and checks each
/// against the project: a selection of existing assets, a dynamic set some asset uses, a name no
/// schedule or other sensor has. Every problem is E0221 with the file.
pub fn load_sensors(project: &Project) -> Result<Vec<SensorDef>, DefinitionErrors> {
    let (mut out, mut errors): (Vec<SensorDef>, Vec<DefinitionError>) = (Vec::new(), Vec::new());
    for (path, rel) in yaml_files(project, "sensors") {
        let bad = |m: String| {
            DefinitionError::new("E0221", m)
                .at(rel.clone(), None)
                .hint("see docs/guide/schedules.md (sensors) for the sensor format")
        };
        for parsed in read_items::<RawSensor>(&path, "sensors") {
            let s = match parsed.and_then(|r| SensorDef::parse(r, &project.config.root)) {
                Err(m) => {
                    errors.push(bad(m));
                    continue;
                }
                Ok(s) => s,
            };
            let uses_set = |set: &str| {
                project.assets.values().any(|a| {
                    a.partitions
                        .as_ref()
                        .is_some_and(|p| p.dynamic_sets().contains(&set))
                })
            };
            if let Err(e) = crate::selection::select(project, s.selection.as_deref()) {
                errors.push(bad(format!("sensor '{}': {e}", s.name)));
            } else if let Some(set) = s.add_partitions.as_deref().filter(|set| !uses_set(set)) {
                errors.push(bad(format!(
                    "sensor '{}': add_partitions '{set}' is not a dynamic partition set of any asset (declare `partitions: {{dynamic: {set}}}`)",
                    s.name
                )));
            } else if out.iter().any(|o| o.name == s.name)
                || project.schedules.iter().any(|o| o.name == s.name)
            {
                errors.push(bad(format!(
                    "'{}' names another sensor or schedule: names share the ticks' history",
                    s.name
                )));
            } else {
                out.push(s);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(DefinitionErrors(errors))
    }
}
