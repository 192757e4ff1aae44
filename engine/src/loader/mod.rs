//! Reading asset YAML files into [`AssetSpec`]s (and, through the work modules that own them,
//! schedules and sensors): the loader sits above the definitions it fills, on the work floor.

mod definitions;
mod yaml_text;

use crate::duration::parse_duration;
use crate::error::{DefinitionError, DefinitionErrors, Location};
use crate::key::AssetKey;
use crate::kinds::{KindDefinition, KindRegistry, COMMON_FIELDS};
use crate::project::{default_group, AssetBody, AssetSpec, Project, ProjectConfig};
use serde_yaml::{Mapping, Value};
use spine_schemas::definitions::AssetDef;
use std::path::{Path, PathBuf};

/// Loads and validates the project at `root`. `kinds` are the asset kinds the caller can execute; each
/// parses its own fields of the definitions that name it.
pub fn load_project(root: &Path, kinds: &KindRegistry) -> Result<Project, DefinitionErrors> {
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
        Ok(mut p) if errors.is_empty() => {
            p.schedules = definitions::load_schedules(&p)?;
            p.sensors = definitions::load_sensors(&p)?;
            Ok(p)
        }
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
    kinds: &KindRegistry,
) -> (Vec<AssetSpec>, Vec<DefinitionError>) {
    let (mut specs, mut errors) = (Vec::new(), Vec::new());
    for file in files {
        let relf = rel(&config.root, file);
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(
                    DefinitionError::new("E0106", format!("cannot read asset file: {e}"))
                        .at(&relf, None),
                );
                continue;
            }
        };
        let text = crate::project::config::strip_bom(&text);
        match read_asset_file(&relf, text) {
            Ok(defs) => {
                for d in defs {
                    match to_spec(config, file, text, d, kinds) {
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

/// `incremental: {strategy: append, watermark: COLUMN}` or
/// `{strategy: merge, unique_key: COLUMN | [COLUMNS], watermark?: COLUMN, delete?: PREDICATE}`; the
/// error is a sentence for E0213.
fn parse_incremental(v: &serde_json::Value) -> Result<crate::project::Incremental, String> {
    const USAGE: &str = "write `incremental: {strategy: append, watermark: COLUMN}` or `{strategy: merge, unique_key: COLUMN}`";
    let o = v.as_object().ok_or(USAGE)?;
    let text = |field: &str| -> Result<Option<String>, String> {
        match o.get(field) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{field}` is not a non-empty string")),
        }
    };
    let allowed: &[&str] = match o.get("strategy").and_then(|s| s.as_str()) {
        Some("append") => &["strategy", "watermark"],
        Some("merge") => &["strategy", "unique_key", "watermark", "delete"],
        Some(other) => return Err(format!("unknown strategy '{other}' (`append` or `merge`)")),
        None => return Err("`strategy` is missing (`append` or `merge`)".into()),
    };
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}` (this strategy takes {})",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if allowed.len() == 2 {
        let watermark = text("watermark")?
            .ok_or("`watermark` names the column whose maximum the next run starts after")?;
        return Ok(crate::project::Incremental::Append { watermark });
    }
    let unique_key: Vec<String> =
        match o.get("unique_key") {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
            Some(serde_json::Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|c| {
                    c.as_str()
                        .filter(|c| !c.trim().is_empty())
                        .map(str::to_string)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or("`unique_key` lists column names")?,
            Some(_) => return Err("`unique_key` is a column or a list of columns".into()),
            None => return Err(
                "`unique_key` is missing: the column (or list of columns) that identifies a row"
                    .into(),
            ),
        };
    let mut seen = std::collections::BTreeSet::new();
    if let Some(c) = unique_key.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("`unique_key` names '{c}' twice"));
    }
    let delete = text("delete")?;
    if let Some(d) = &delete {
        use datafusion::sql::sqlparser::{dialect::GenericDialect, parser::Parser};
        Parser::new(&GenericDialect {})
            .try_with_sql(d)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| format!("`delete` is not a SQL predicate: {e}"))?;
    }
    Ok(crate::project::Incremental::Merge {
        unique_key,
        watermark: text("watermark")?,
        delete,
    })
}

/// One asset definition as read from a file: the common fields, typed; the kind's own fields, as YAML;
/// and the line of its `key:`.
struct RawDefinition {
    common: AssetDef,
    fields: Mapping,
    line: Option<usize>,
}

/// Parses one YAML file: a single asset mapping, or `assets: [...]`, each split into the common fields
/// (parsed here) and the kind's own fields (parsed by the kind).
fn read_asset_file(relf: &Path, text: &str) -> Result<Vec<RawDefinition>, DefinitionError> {
    let malformed = |msg: String, line: Option<usize>| {
        DefinitionError::new("E0107", format!("malformed asset file: {msg}"))
            .at(relf, line)
            .hint("see docs/reference/project.md for the asset format")
    };
    if let Some((line, col, msg)) = yaml_text::too_deep(text) {
        return Err(malformed(
            format!("{msg} (line {line}, column {col})"),
            Some(line),
        ));
    }
    let value: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        match yaml_text::tab_indent(text) {
            // The parser's own words ("found character that cannot start any token") do not say
            // what is wrong.
            Some((tab_line, col))
                if ["cannot start any token", "tab character"]
                    .iter()
                    .any(|m| e.to_string().contains(m)) =>
            {
                malformed(
                    format!(
                        "tabs are not allowed in YAML indentation: line {tab_line}, column {col} \
                     starts with a tab; use spaces"
                    ),
                    Some(tab_line),
                )
            }
            _ => malformed(e.to_string(), line),
        }
    })?;
    let mappings: Vec<Mapping> = match value {
        Value::Mapping(mut m) if m.contains_key("assets") => {
            if let Some(other) = m.keys().find(|k| k.as_str() != Some("assets")) {
                return Err(malformed(
                    format!("unknown top-level field `{}` beside `assets`", show(other)),
                    None,
                ));
            }
            match m.remove("assets") {
                Some(Value::Sequence(items)) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Mapping(m) => Ok(m),
                        _ => Err(malformed(
                            "each entry of `assets:` must be a mapping".into(),
                            None,
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(Value::Null) => Vec::new(),
                _ => return Err(malformed("`assets:` must be a list".into(), None)),
            }
        }
        Value::Mapping(m) => vec![m],
        Value::Null => Vec::new(),
        _ => {
            return Err(malformed(
                "expected a mapping with `key:` or `assets:`".into(),
                Some(1),
            ))
        }
    };
    let lines = key_lines(text);
    mappings
        .into_iter()
        .map(|m| {
            let (common, fields): (Mapping, Mapping) = m
                .into_iter()
                .partition(|(k, _)| k.as_str().is_some_and(|k| COMMON_FIELDS.contains(&k)));
            let line = common
                .get("key")
                .and_then(|k| k.as_str())
                .and_then(|k| lines.get(k).copied());
            let common: AssetDef = serde_yaml::from_value(Value::Mapping(common))
                .map_err(|e| malformed(e.to_string(), line))?;
            Ok(RawDefinition {
                common,
                fields,
                line,
            })
        })
        .collect()
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
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
    text: &str,
    raw: RawDefinition,
    kinds: &KindRegistry,
) -> Result<AssetSpec, DefinitionError> {
    let RawDefinition {
        common: def,
        fields,
        line,
    } = raw;
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
    let Some(kind) = kinds.get(&def.kind) else {
        let names = kinds.names();
        let mut e = err("E0205", format!("unknown kind '{}'", def.kind));
        e = match crate::project::closest(&def.kind, names.iter().copied()) {
            Some(s) => e.hint(format!(
                "did you mean '{s}'? known kinds: {}",
                names.join(", ")
            )),
            None => e.hint(format!("known kinds: {}", names.join(", "))),
        };
        return Err(e);
    };
    let mut deps = Vec::new();
    for d in &def.deps {
        deps.push(AssetKey::parse(d).map_err(|e| err("E0201", format!("bad upstream key: {e}")))?);
    }
    let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let declared_schema = match def.schema.as_ref() {
        Some(v) => Some(crate::project::declared_schema::parse(v).map_err(|m| {
            err("E0250", format!("schema: {m}"))
                .hint("e.g. `schema: [{id: int64}, {name: string}]`")
        })?),
        None => None,
    };
    let partitions = match def.partitions.as_ref() {
        Some(p) => Some(
            crate::partitions::PartitionsDef::parse(p)
                .map_err(|m| err("E0210", format!("partitions: {m}")))?,
        ),
        None => None,
    };
    let configured = kind.configure(&KindDefinition {
        key: &key,
        kind: &def.kind,
        fields,
        deps: &deps,
        dir: &dir,
        schema: declared_schema.clone(),
        partitions: partitions.as_ref(),
        config,
        location: loc.clone(),
        text,
    })?;
    deps.extend(configured.upstreams);
    let declared_columns = match def.schema.as_ref() {
        Some(v) => crate::project::declared_schema::lineage(v, &deps)
            .map_err(|m| err("E0250", format!("schema: {m}")))?,
        None => Vec::new(),
    };
    if !declared_columns.is_empty() && matches!(configured.body, AssetBody::Sql { .. }) {
        return Err(err(
            "E0250",
            "schema: a SQL asset's column lineage is derived from its query; drop `from:`".into(),
        ));
    }
    let (body, auto_version, unread, lookbacks) = (
        configured.body,
        configured.code_version,
        configured.unread_deps,
        configured.lookbacks,
    );
    let dur =
        |field: &str, v: &Option<String>| -> Result<Option<std::time::Duration>, DefinitionError> {
            v.as_ref()
                .map(|t| parse_duration(t).map_err(|m| err("E0104", format!("{field}: {m}"))))
                .transpose()
        };
    let s = &config.settings;
    deps.sort();
    deps.dedup();
    let reads_in_place = kind.reads_in_place(&body).is_some();
    Ok(AssetSpec {
        reads_in_place,
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
        on_schema_change: def.on_schema_change.unwrap_or_default(),
        partitions,
        partition_mappings: def
            .partition_mapping
            .iter()
            .map(|(k, v)| {
                let up = AssetKey::parse(k)
                    .map_err(|e| err("E0212", format!("partition_mapping: {e}")))?;
                let m = crate::partitions::PartitionMapping::parse(v)
                    .map_err(|m| err("E0212", format!("partition_mapping of '{k}': {m}")))?;
                Ok((up, m))
            })
            .collect::<Result<_, DefinitionError>>()?,
        automation: match def.automation.as_ref() {
            Some(a) => Some(
                crate::automation::Condition::parse(a)
                    .map_err(|m| err("E0211", format!("automation: {m}")))?,
            ),
            None => None,
        },
        incremental: match def.incremental.as_ref() {
            None => {
                if matches!(&body, AssetBody::Sql { rewritten, .. } if crate::kinds::sql::uses_watermark(rewritten)) {
                    return Err(err("E0213", "the query uses {{ watermark }}, but the asset is not incremental".into())
                        .hint("add `incremental: {strategy: append, watermark: COLUMN}`"));
                }
                None
            }
            Some(_) if def.partitions.is_some() => {
                return Err(err("E0213", "incremental: a partitioned asset replaces partitions already; drop `incremental` or `partitions`".into()))
            }
            Some(v) => {
                let inc = parse_incremental(v).map_err(|m| err("E0213", format!("incremental: {m}")))?;
                if inc.watermark().is_none() && matches!(&body, AssetBody::Sql { rewritten, .. } if crate::kinds::sql::uses_watermark(rewritten)) {
                    return Err(err("E0213", "the query uses {{ watermark }}, but `incremental:` names no `watermark` column".into())
                        .hint("add `watermark: COLUMN` to `incremental:`"));
                }
                Some(inc)
            }
        },
        checks: match def.checks.as_ref() {
            Some(c) => {
                crate::project::checks::parse_checks(c).map_err(|m| err("E0230", format!("checks: {m}")))?
            }
            None => Vec::new(),
        },
        declared_schema,
        declared_columns,
        body,
        source: Some(loc),
        unread_deps: unread,
        lookbacks,
        key,
    })
}
