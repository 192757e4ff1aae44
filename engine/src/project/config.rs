//! `spine.toml` resolved into a [`ProjectConfig`]: paths made absolute, `${env:NAME}` substituted, and the
//! precedence applied (flag > environment variable > `spine.toml` > built-in default).

use crate::duration::parse_duration;
use crate::error::{DefinitionError, DefinitionErrors};
use spine_schemas::definitions::ProjectFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Per-asset defaults and run settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Retries after a failed attempt.
    pub retries: u32,
    /// First retry delay.
    pub retry_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Steps run at once.
    pub concurrency: usize,
    /// How long a step claim holds without renewal.
    pub lease: Duration,
    /// How often a working step renews its claims.
    pub renew_every: Duration,
    /// `[limits.tags]`: steps at once across every worker, by asset tag.
    pub tag_limits: BTreeMap<String, usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retries: 0,
            retry_delay: Duration::from_secs(1),
            timeout: None,
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            lease: Duration::from_secs(60),
            renew_every: Duration::from_secs(20),
            tag_limits: BTreeMap::new(),
        }
    }
}

/// The resolved project configuration.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// Folder holding `spine.toml`.
    pub root: PathBuf,
    /// Project name.
    pub name: String,
    /// Folder searched for asset YAML files.
    pub assets_dir: PathBuf,
    /// Run-store URL (`sqlite://…`).
    pub state_url: String,
    /// Warehouse root URL (`file:///…/` or `s3://…/`), always ending in `/`.
    pub warehouse_url: Url,
    /// Object-store options for the warehouse.
    pub warehouse_options: BTreeMap<String, String>,
    /// fsync local warehouse writes (power-loss durability).
    pub warehouse_fsync: bool,
    /// Defaults.
    pub settings: Settings,
    /// `[vars]`.
    pub vars: BTreeMap<String, String>,
    /// Bytes of memory query execution may use (`[limits] memory`, `SPINE_MEMORY_LIMIT`).
    pub memory_limit: usize,
    /// `[project] confine`: definitions may name local files only inside the project folder or the
    /// warehouse (see [`ProjectConfig::outside`]).
    pub confine: bool,
    /// The target chosen (`--target`, `SPINE_TARGET`), if any.
    pub target: Option<String>,
    /// `[prices."MODEL"]`: models' token prices.
    pub prices: BTreeMap<String, spine_schemas::definitions::PriceSection>,
    /// `[executor]`.
    pub executor: spine_schemas::definitions::ExecutorSection,
    /// `[budgets]`.
    pub budgets: spine_schemas::definitions::BudgetsSection,
    /// `[roles]` (`None`: everyone is an admin).
    pub roles: Option<spine_schemas::definitions::RolesSection>,
}

impl ProjectConfig {
    /// The embedded default for a project rooted at `root`: `.spine/state.db` and `warehouse/`, with
    /// `SPINE_STATE_URL` / `SPINE_WAREHOUSE_URL` applied.
    pub fn in_dir(root: impl Into<PathBuf>) -> Result<Self, DefinitionErrors> {
        let root = absolute(&root.into());
        let state = std::env::var("SPINE_STATE_URL").ok();
        let wh = std::env::var("SPINE_WAREHOUSE_URL").ok();
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("project")
            .to_string();
        Ok(ProjectConfig {
            state_url: resolve_state_url(&root, &name, state.as_deref())?,
            name,
            assets_dir: root.join("assets"),
            warehouse_url: resolve_warehouse_url(&root, wh.as_deref())?,
            warehouse_options: BTreeMap::new(),
            warehouse_fsync: true,
            settings: Settings::default(),
            vars: BTreeMap::new(),
            memory_limit: memory_limit(None)?,
            confine: false,
            target: None,
            prices: BTreeMap::new(),
            executor: Default::default(),
            budgets: Default::default(),
            roles: None,
            root,
        })
    }

    /// With `confine` set, why `path` may not be used: it lies outside the project folder and the
    /// warehouse once `..` and symbolic links are resolved. `None` when it may (always without
    /// `confine`).
    pub fn outside(&self, path: &Path) -> Option<String> {
        if !self.confine {
            return None;
        }
        let resolved = resolve(path);
        let mut allowed = vec![resolve(&self.root)];
        if let Ok(wh) = self.warehouse_url.to_file_path() {
            allowed.push(resolve(&wh));
        }
        if allowed.iter().any(|a| resolved.starts_with(a)) {
            return None;
        }
        Some(format!(
            "{} is outside the project folder {} and its warehouse ([project] confine = true)",
            resolved.display(),
            self.root.display()
        ))
    }

    /// Reads `<root>/spine.toml`.
    pub fn load(root: &Path) -> Result<Self, DefinitionErrors> {
        let root = absolute(root);
        let path = root.join("spine.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DefinitionError::new("E0101", format!("cannot read spine.toml: {e}"))
                .at(&path, None)
                .hint("run `assets init` to create a project, or pass --project DIR")
        })?;
        let text = substitute_env(strip_bom(&text)).map_err(|(line, msg)| {
            DefinitionError::new("E0103", msg)
                .at(&path, Some(line))
                .hint("export the variable, or remove the reference")
        })?;
        let file: ProjectFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            DefinitionError::new("E0102", format!("malformed spine.toml: {}", e.message()))
                .at(&path, line)
                .hint("see docs/reference/project.md for the format")
        })?;
        let bad = |field: &str, msg: String| {
            DefinitionError::new("E0104", format!("{field}: {msg}")).at(&path, None)
        };
        let mut s = Settings::default();
        let d = &file.defaults;
        if let Some(r) = d.retries {
            s.retries = r;
        }
        if let Some(t) = &d.retry_delay {
            s.retry_delay = parse_duration(t).map_err(|m| bad("defaults.retry_delay", m))?;
        }
        if let Some(t) = &d.timeout {
            s.timeout = Some(parse_duration(t).map_err(|m| bad("defaults.timeout", m))?);
        }
        if let Some(c) = d.concurrency {
            if c == 0 {
                return Err(bad("defaults.concurrency", "must be at least 1".into()).into());
            }
            s.concurrency = c;
        }
        if let Some(t) = &d.lease {
            s.lease = parse_duration(t).map_err(|m| bad("defaults.lease", m))?;
        }
        s.renew_every = match &d.renew_every {
            Some(t) => parse_duration(t).map_err(|m| bad("defaults.renew_every", m))?,
            None => s.lease / 3,
        };
        if s.renew_every.is_zero() || s.renew_every >= s.lease {
            return Err(bad(
                "defaults.renew_every",
                format!(
                    "must be above zero and shorter than the lease ({:?}); a third of it is usual",
                    s.lease
                ),
            )
            .into());
        }
        for (tag, limit) in &file.limits.tags {
            if *limit == 0 || tag.trim().is_empty() {
                return Err(bad(
                    &format!("limits.tags.\"{tag}\""),
                    "a tag (`key=value` or a plain tag) and at least 1 step".into(),
                )
                .into());
            }
        }
        s.tag_limits = file.limits.tags.clone();
        // A target (`--target NAME`, `SPINE_TARGET`) overrides the file; the environment overrides both.
        let target = std::env::var("SPINE_TARGET").ok().filter(|t| !t.is_empty());
        let mut file = file;
        if let Some(name) = &target {
            let Some(t) = file.targets.get(name).cloned() else {
                let known: Vec<&str> = file.targets.keys().map(String::as_str).collect();
                return Err(DefinitionError::new(
                    "E0111",
                    format!("no target '{name}' in spine.toml"),
                )
                .at(&path, None)
                .hint(if known.is_empty() {
                    format!("define it as [targets.{name}] (state, warehouse, vars), or leave out --target / SPINE_TARGET")
                } else {
                    format!("its targets: {}", known.join(", "))
                })
                .into());
            };
            file.state.url = t.state.url.or(file.state.url);
            file.warehouse.url = t.warehouse.url.or(file.warehouse.url);
            file.warehouse.fsync = t.warehouse.fsync.or(file.warehouse.fsync);
            file.warehouse.options.extend(t.warehouse.options);
            file.vars.extend(t.vars);
        }
        let state = std::env::var("SPINE_STATE_URL")
            .ok()
            .or(file.state.url.clone());
        let wh = std::env::var("SPINE_WAREHOUSE_URL")
            .ok()
            .or(file.warehouse.url.clone());
        let mut vars = file.vars.clone();
        for (k, v) in vars.iter_mut() {
            if let Ok(e) = std::env::var(format!("SPINE_VAR_{}", k.to_ascii_uppercase())) {
                crate::redact::register(&e);
                *v = e;
            }
        }
        let config = ProjectConfig {
            name: file.project.name.clone(),
            assets_dir: root.join(&file.project.assets),
            state_url: resolve_state_url(&root, &file.project.name, state.as_deref())?,
            warehouse_url: resolve_warehouse_url(&root, wh.as_deref())?,
            warehouse_options: file.warehouse.options.clone(),
            warehouse_fsync: file.warehouse.fsync.unwrap_or(true),
            settings: s,
            vars,
            memory_limit: memory_limit(file.limits.memory.as_deref()).map_err(|e| {
                DefinitionErrors(e.0.into_iter().map(|d| d.at(&path, None)).collect())
            })?,
            confine: file.project.confine,
            target,
            prices: file.prices.clone(),
            executor: file.executor.clone(),
            budgets: file.budgets,
            roles: file.roles.clone(),
            root,
        };
        if let Some(why) = config.outside(&config.assets_dir) {
            return Err(
                DefinitionError::new("E0110", format!("[project] assets: {why}"))
                    .at(&path, None)
                    .hint("keep the asset files inside the project, or drop `confine`")
                    .into(),
            );
        }
        let own: Vec<(String, String)> = file.guardrails.patterns.clone().into_iter().collect();
        crate::redact::set_patterns(&file.guardrails.pii, &own).map_err(|m| {
            DefinitionError::new("E0104", m)
                .at(&path, None)
                .hint("e.g. [guardrails] pii = [\"email\", \"phone\", \"card\"]")
        })?;
        Ok(config)
    }

    /// The value of `${var:name}`: `SPINE_VAR_<NAME>` from the environment, else `[vars]`.
    pub fn var(&self, name: &str) -> Option<String> {
        std::env::var(format!("SPINE_VAR_{}", name.to_ascii_uppercase()))
            .ok()
            .inspect(|v| crate::redact::register(v))
            .or_else(|| self.vars.get(name).cloned())
    }
}

/// `p` made absolute with symbolic links and `..` resolved: its longest existing ancestor is
/// canonicalized and the rest appended, lexically normalized.
fn resolve(p: &Path) -> PathBuf {
    let p = absolute(p);
    let mut existing = p.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(c) = existing.canonicalize() {
            break c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    let mut out = base;
    for part in rest.into_iter().rev() {
        if part == ".." {
            out.pop();
        } else if part != "." {
            out.push(part);
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or(p.to_path_buf())
    };
    std::fs::canonicalize(&p).unwrap_or(p)
}

fn resolve_state_url(
    root: &Path,
    project: &str,
    url: Option<&str>,
) -> Result<String, DefinitionErrors> {
    let url = url.unwrap_or("sqlite://.spine/state.db");
    if let Some(path) = url.strip_prefix("sqlite://") {
        let p = Path::new(path);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        return Ok(format!("sqlite://{}", full.display()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // `{project}`: the project's name as a lower-case identifier, so that projects can share one
        // database with a schema each (`?options[search_path]={project}`).
        let ident: String = project
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        return Ok(url.replace("{project}", &ident));
    }
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or(url);
    Err(DefinitionError::new(
        "E0109",
        format!("state URL '{url}': the '{scheme}' scheme is not supported"),
    )
    .hint("use sqlite://PATH (the default is sqlite://.spine/state.db) or postgres://USER@HOST/DATABASE")
    .into())
}

fn resolve_warehouse_url(root: &Path, url: Option<&str>) -> Result<Url, DefinitionErrors> {
    let raw = url.unwrap_or("warehouse");
    let mut u = if raw.contains("://") {
        Url::parse(raw).map_err(|e| {
            DefinitionError::new("E0105", format!("invalid warehouse URL '{raw}': {e}"))
                .hint("use a path, file:///abs/path or s3://bucket/prefix")
        })?
    } else {
        let p = Path::new(raw);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        Url::from_directory_path(&full).map_err(|_| {
            DefinitionError::new(
                "E0105",
                format!("invalid warehouse path '{}'", full.display()),
            )
        })?
    };
    if !matches!(u.scheme(), "file" | "s3" | "s3a") {
        return Err(DefinitionError::new(
            "E0108",
            format!(
                "warehouse URL '{raw}': the '{}' scheme is not supported yet",
                u.scheme()
            ),
        )
        .hint("use a local path, file:///abs/path or s3://bucket/prefix")
        .into());
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// Bytes for query execution: `SPINE_MEMORY_LIMIT`, else `[limits] memory`, else half of the machine's
/// memory (4 GiB when it cannot be read).
fn memory_limit(configured: Option<&str>) -> Result<usize, DefinitionErrors> {
    let env = std::env::var("SPINE_MEMORY_LIMIT").ok();
    let (field, text) = match (&env, configured) {
        (Some(e), _) => ("SPINE_MEMORY_LIMIT", Some(e.as_str())),
        (None, c) => ("limits.memory", c),
    };
    match text {
        Some(t) => parse_bytes(t).map_err(|m| {
            DefinitionError::new("E0104", format!("{field}: {m}"))
                .hint("e.g. memory = \"2GiB\" or \"512MiB\"")
                .into()
        }),
        None => Ok(machine_memory().map(|m| m / 2).unwrap_or(4 << 30)),
    }
}

fn machine_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `2GiB`, `512MiB`, `64KiB`, `1GB`, `1000` (bytes) → bytes; at least 1 MiB.
pub(crate) fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 2GiB or 512MiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (use KiB, MiB, GiB)"
            ))
        }
    };
    let bytes = n * mult;
    if bytes < (1 << 20) as f64 {
        return Err(format!("'{text}' is below the minimum of 1MiB"));
    }
    Ok(bytes as usize)
}

/// The text without a leading byte-order mark (editors on Windows write one; YAML and TOML parsers
/// reject it).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Replaces `${env:NAME}`; returns (line, message) for a missing variable.
fn substitute_env(text: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0;
    while let Some(i) = rest.find("${env:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let line = text[..consumed + i].lines().count().max(1);
        let end = after
            .find('}')
            .ok_or((line, "unterminated '${env:' (expected '}')".to_string()))?;
        let name = &after[..end];
        let val = std::env::var(name)
            .map_err(|_| (line, format!("environment variable '{name}' is not set")))?;
        crate::redact::register(&val);
        out.push_str(&val);
        consumed += i + 6 + end + 1;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        for bad in ["lots", "2XB", "10KiB", ""] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
