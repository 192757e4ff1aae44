//! Reading asset YAML files into [`AssetSpec`]s.

use super::{default_group, AssetBody, AssetSpec, Project, ProjectConfig};
use crate::duration::parse_duration;
use crate::error::{DefinitionError, DefinitionErrors, Location};
use crate::hash::short_hash;
use crate::key::AssetKey;
use crate::sql::{analyze, render_vars, SqlError};
use spine_schemas::definitions::{AssetDef, AssetFile};
use std::path::{Path, PathBuf};

/// Loads and validates the project at `root`. `kinds` are the asset kinds the caller can execute.
pub fn load_project(root: &Path, kinds: &[&str]) -> Result<Project, DefinitionErrors> {
    let config = ProjectConfig::load(root)?;
    let mut errors = Vec::new();
    let mut specs = Vec::new();
    let files = yaml_files(&config.assets_dir).map_err(|e| {
        DefinitionError::new("E0106", format!("cannot read the assets folder: {e}"))
            .at(rel(&config.root, &config.assets_dir), None)
            .hint("create it, or set [project] assets = \"DIR\" in spine.toml")
    })?;
    // Files parse independently: spread them over the cores (a 100,000-asset project loads in parallel).
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let results: Vec<(Vec<AssetSpec>, Vec<DefinitionError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(|| load_files(&config, part, kinds)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Vec::new(), Vec::new())))
            .collect()
    });
    for (s, e) in results {
        specs.extend(s);
        errors.extend(e);
    }
    let assembled = Project::assemble(config, specs);
    match assembled {
        Ok(p) if errors.is_empty() => Ok(p),
        Ok(_) => Err(DefinitionErrors(errors)),
        Err(DefinitionErrors(more)) => {
            errors.extend(more);
            Err(DefinitionErrors(errors))
        }
    }
}

/// Reads and converts the asset files in `files`.
fn load_files(
    config: &ProjectConfig,
    files: &[PathBuf],
    kinds: &[&str],
) -> (Vec<AssetSpec>, Vec<DefinitionError>) {
    let (mut specs, mut errors) = (Vec::new(), Vec::new());
    for file in files {
        match read_asset_file(config, file) {
            Ok(defs) => {
                for (def, line) in defs {
                    match to_spec(config, file, line, def, kinds) {
                        Ok(s) => specs.push(s),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (specs, errors)
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| p.to_path_buf())
}

fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses one YAML file: a single asset mapping, or `assets: [...]`. Returns each definition with the
/// line where its `key:` is written.
fn read_asset_file(
    config: &ProjectConfig,
    file: &Path,
) -> Result<Vec<(AssetDef, Option<usize>)>, DefinitionError> {
    let relf = rel(&config.root, file);
    let text = std::fs::read_to_string(file).map_err(|e| {
        DefinitionError::new("E0106", format!("cannot read asset file: {e}")).at(&relf, None)
    })?;
    let yaml_err = |e: serde_yaml::Error| {
        let line = e.location().map(|l| l.line());
        DefinitionError::new("E0107", format!("malformed asset file: {e}"))
            .at(&relf, line)
            .hint("see docs/reference/project.md for the asset format")
    };
    let text = super::config::strip_bom(&text);
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(yaml_err)?;
    let defs = match &value {
        serde_yaml::Value::Mapping(m) if m.contains_key("assets") => {
            serde_yaml::from_str::<AssetFile>(text)
                .map_err(yaml_err)?
                .assets
        }
        serde_yaml::Value::Mapping(_) => {
            vec![serde_yaml::from_str::<AssetDef>(text).map_err(yaml_err)?]
        }
        serde_yaml::Value::Null => Vec::new(),
        _ => {
            return Err(DefinitionError::new(
                "E0107",
                "malformed asset file: expected a mapping with `key:` or `assets:`",
            )
            .at(&relf, Some(1)))
        }
    };
    let lines = key_lines(text);
    Ok(defs
        .into_iter()
        .map(|d| {
            let line = lines.get(d.key.as_str()).copied();
            (d, line)
        })
        .collect())
}

/// The line on which each `key: <key>` first appears, in one pass over the file.
fn key_lines(text: &str) -> std::collections::HashMap<&str, usize> {
    let mut out = std::collections::HashMap::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        if let Some(v) = t.strip_prefix("key:") {
            out.entry(v.trim().trim_matches(['"', '\'']))
                .or_insert(i + 1);
        }
    }
    out
}

fn to_spec(
    config: &ProjectConfig,
    file: &Path,
    line: Option<usize>,
    def: AssetDef,
    kinds: &[&str],
) -> Result<AssetSpec, DefinitionError> {
    let relf = rel(&config.root, file);
    let loc = Location {
        file: relf.clone(),
        line,
    };
    let err = |code: &'static str, msg: String| {
        DefinitionError::new(code, msg)
            .asset(def.key.clone())
            .at_opt(Some(loc.clone()))
    };
    let key = AssetKey::parse(&def.key).map_err(|e| {
        err("E0201", e.to_string())
            .hint("keys are path-like: letters, digits and '_' separated by '/', e.g. sales/orders")
    })?;
    if !kinds.contains(&def.kind.as_str()) {
        let mut e = err("E0205", format!("unknown kind '{}'", def.kind));
        e = match super::closest(&def.kind, kinds.iter().copied()) {
            Some(s) => e.hint(format!(
                "did you mean '{s}'? known kinds: {}",
                kinds.join(", ")
            )),
            None => e.hint(format!("known kinds: {}", kinds.join(", "))),
        };
        return Err(e);
    }
    let mut deps = Vec::new();
    for d in &def.deps {
        deps.push(AssetKey::parse(d).map_err(|e| err("E0201", format!("bad upstream key: {e}")))?);
    }
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let var = |n: &str| config.var(n);
    let mut unread = Vec::new();
    let (body, auto_version) = match def.kind.as_str() {
        "sql" => {
            let (raw, sql_file) = match (&def.sql, &def.query) {
                (Some(f), None) => {
                    let p = dir.join(f);
                    let t = std::fs::read_to_string(&p).map_err(|e| {
                        err("E0206", format!("cannot read SQL file '{f}': {e}"))
                            .hint("the path is relative to the YAML file")
                    })?;
                    (super::config::strip_bom(&t).to_string(), Some(p))
                }
                (None, Some(q)) => (q.clone(), None),
                (Some(_), Some(_)) => {
                    return Err(err(
                        "E0206",
                        "set either `sql:` (a file) or `query:` (inline), not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(err(
                        "E0206",
                        "a sql asset needs `sql: FILE.sql` or `query: SELECT …`".into(),
                    ))
                }
            };
            let sql_loc = sql_file
                .as_ref()
                .map(|p| Location {
                    file: rel(&config.root, p),
                    line: None,
                })
                .unwrap_or(loc.clone());
            let query = render_vars(&raw, &var).map_err(|m| {
                DefinitionError::new("E0304", m)
                    .asset(key.as_str())
                    .at_opt(Some(sql_loc.clone()))
            })?;
            let analyzed = analyze(&query).map_err(|e| {
                let (code, what) = match e {
                    SqlError::Parse(m) => ("E0301", format!("SQL does not parse: {m}")),
                    SqlError::Shape(m) => ("E0301", m),
                };
                DefinitionError::new(code, what)
                    .asset(key.as_str())
                    .at_opt(Some(sql_loc.clone()))
            })?;
            if let Some(bad) = analyzed.invalid_names.first() {
                return Err(DefinitionError::new(
                    "E0303",
                    format!("table name '{bad}' is not an asset key"),
                )
                .asset(key.as_str())
                .at_opt(Some(sql_loc))
                .hint(
                    "refer to upstream assets as schema.table (sales.orders) or \"sales/orders\"",
                ));
            }
            unread = deps
                .iter()
                .filter(|d| !analyzed.tables.contains(*d))
                .cloned()
                .collect();
            deps.extend(analyzed.tables.iter().cloned());
            let version = short_hash(query.as_bytes());
            (
                AssetBody::Sql {
                    query,
                    rewritten: analyzed.rewritten,
                    file: sql_file,
                },
                version,
            )
        }
        "command" => {
            let Some(argv) = def.command.clone().filter(|a| !a.is_empty()) else {
                return Err(err(
                    "E0206",
                    "a command asset needs `command: [program, args…]`".into(),
                ));
            };
            let argv = argv
                .iter()
                .map(|a| render_vars(a, &var))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| err("E0304", m))?;
            let env = def
                .env
                .iter()
                .map(|(k, v)| render_vars(v, &var).map(|v| (k.clone(), v)))
                .collect::<Result<std::collections::BTreeMap<_, _>, _>>()
                .map_err(|m| err("E0304", m))?;
            for (name, f) in [
                ("output_format", &def.output_format),
                ("input_format", &def.input_format),
            ] {
                if let Some(f) = f {
                    let ok: &[&str] = if name == "output_format" {
                        &["parquet", "csv", "jsonl"]
                    } else {
                        &["csv", "jsonl", "parquet"]
                    };
                    if !ok.contains(&f.as_str()) {
                        return Err(err(
                            "E0206",
                            format!("{name} '{f}' is not one of {}", ok.join(", ")),
                        ));
                    }
                }
            }
            // The code version covers the arguments, the environment and the content of files they name.
            let mut h = Vec::new();
            for a in &argv {
                h.extend_from_slice(a.as_bytes());
                h.push(0);
                let p = dir.join(a);
                if p.is_file() {
                    if let Ok(bytes) = std::fs::read(&p) {
                        h.extend_from_slice(&bytes);
                    }
                }
            }
            for (k, v) in &env {
                h.extend_from_slice(format!("{k}={v}\0").as_bytes());
            }
            let body = AssetBody::Command {
                argv,
                env,
                cwd: dir.clone(),
                output_format: def.output_format.clone(),
                input_format: def.input_format.clone(),
            };
            (body, short_hash(&h))
        }
        other => {
            return Err(
                err("E0205", format!("kind '{other}' cannot be defined in YAML"))
                    .hint("rust assets are registered in code through the library API"),
            )
        }
    };
    let dur =
        |field: &str, v: &Option<String>| -> Result<Option<std::time::Duration>, DefinitionError> {
            v.as_ref()
                .map(|t| parse_duration(t).map_err(|m| err("E0104", format!("{field}: {m}"))))
                .transpose()
        };
    let s = &config.settings;
    deps.sort();
    deps.dedup();
    Ok(AssetSpec {
        group: def.group.clone().unwrap_or_else(|| default_group(&key)),
        kind: def.kind.clone(),
        deps,
        tags: def.tags.clone(),
        owners: def.owners.clone(),
        description: def.description.clone(),
        code_version: def.code_version.clone().unwrap_or(auto_version),
        retries: def.retries.unwrap_or(s.retries),
        retry_delay: dur("retry_delay", &def.retry_delay)?.unwrap_or(s.retry_delay),
        timeout: dur("timeout", &def.timeout)?.or(s.timeout),
        body,
        source: Some(loc),
        unread_deps: unread,
        key,
    })
}
