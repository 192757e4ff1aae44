//! How a kind owns its configuration. The project loader reads the fields every asset has (key, kind,
//! deps, group, tags, owners, description, code_version, retries, retry_delay, timeout) and hands the
//! rest of the asset's YAML mapping to the kind named by `kind:` as a [`KindDefinition`]. The kind
//! parses it into its own typed configuration ([`KindDefinition::parse`] rejects unknown fields with the
//! same codes and locations as the loader), and returns a [`KindConfig`]: the body it will execute, the
//! upstreams it found, and its code version. Adding a kind touches only the kind's own module.

use crate::error::{DefinitionError, Location};
use crate::key::AssetKey;
use crate::project::{AssetBody, ProjectConfig};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The fields of an asset definition that every kind shares; the loader reads them, kinds never see
/// them.
pub const COMMON_FIELDS: [&str; 18] = [
    "key",
    "kind",
    "deps",
    "group",
    "tags",
    "owners",
    "description",
    "code_version",
    "retries",
    "retry_delay",
    "timeout",
    "on_schema_change",
    "partitions",
    "automation",
    "partition_mapping",
    "checks",
    "incremental",
    "schema",
];

/// One asset's definition as its kind sees it.
pub struct KindDefinition<'a> {
    /// The asset.
    pub key: &'a AssetKey,
    /// The kind's name as written.
    pub kind: &'a str,
    /// The kind's own fields (everything but [`COMMON_FIELDS`]).
    pub fields: serde_yaml::Mapping,
    /// Upstreams declared in `deps`.
    pub deps: &'a [AssetKey],
    /// The folder of the YAML file (relative paths in a definition resolve against it).
    pub dir: &'a Path,
    /// The declared output schema (`schema:`), if any.
    pub schema: Option<arrow::datatypes::SchemaRef>,
    /// The asset's partitions (`partitions:`), if any.
    pub partitions: Option<&'a crate::partitions::PartitionsDef>,
    pub(crate) config: &'a ProjectConfig,
    pub(crate) location: Location,
    /// The file's text, to find the line of a field.
    pub(crate) text: &'a str,
}

/// What a kind made of its definition.
pub struct KindConfig {
    /// What the kind executes.
    pub body: AssetBody,
    /// Its code version (unless the definition sets `code_version`).
    pub code_version: String,
    /// Upstreams the kind found itself (a SQL query's tables), added to the declared `deps`.
    pub upstreams: Vec<AssetKey>,
    /// Declared upstreams the kind does not read (kept as ordering dependencies; `check` notes them).
    pub unread_deps: Vec<AssetKey>,
    /// Upstreams read over a trailing span before each partition's end (a feature view's longest
    /// window): when both assets have time partitions, the loader maps them with the `{last: N}` that
    /// covers the span, unless `partition_mapping:` names a wider one.
    pub lookbacks: std::collections::BTreeMap<AssetKey, std::time::Duration>,
}

impl KindConfig {
    /// A configuration with only a body and a code version.
    pub fn new(body: AssetBody, code_version: String) -> Self {
        KindConfig {
            body,
            code_version,
            upstreams: Vec::new(),
            unread_deps: Vec::new(),
            lookbacks: Default::default(),
        }
    }
}

impl KindDefinition<'_> {
    /// An error about this asset, located at its definition.
    pub fn error(&self, code: &'static str, message: impl Into<String>) -> DefinitionError {
        DefinitionError::new(code, message)
            .asset(self.key.as_str())
            .at_opt(Some(self.location.clone()))
    }

    /// An error located at `file` (e.g. a `.sql` file the definition names).
    pub fn error_in(
        &self,
        file: &Path,
        code: &'static str,
        message: impl Into<String>,
    ) -> DefinitionError {
        DefinitionError::new(code, message)
            .asset(self.key.as_str())
            .at(self.relative(file), None)
    }

    /// Parses the kind's fields into `T` (which should deny unknown fields). An unknown field is E0107
    /// at its line, with the closest common field suggested; any other mismatch is E0206.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, DefinitionError> {
        serde_yaml::from_value(serde_yaml::Value::Mapping(self.fields.clone())).map_err(|e| {
            let msg = e.to_string();
            match unknown_field(&msg) {
                Some(field) => {
                    let mut err = DefinitionError::new(
                        "E0107",
                        format!("malformed asset file: {msg} (for a `{}` asset)", self.kind),
                    )
                    .asset(self.key.as_str())
                    .at_opt(Some(self.field_location(field)));
                    let known = COMMON_FIELDS.iter().copied().chain(expected_fields(&msg));
                    if let Some(c) = crate::project::closest(field, known) {
                        err = err.hint(format!("did you mean `{c}`?"));
                    }
                    err
                }
                None => self.error("E0206", format!("{} asset: {msg}", self.kind)),
            }
        })
    }

    /// `text` with `${var:NAME}` replaced from `[vars]` / `SPINE_VAR_NAME` (E0304 when undefined).
    pub fn render(&self, text: &str) -> Result<String, DefinitionError> {
        let var = |n: &str| self.config.var(n);
        crate::sql::render_vars(text, &var).map_err(|m| self.error("E0304", m))
    }

    /// A path-like field's value with `${env:NAME}` (from the environment) and `${var:NAME}` (from
    /// `[vars]` / `SPINE_VAR_NAME`) replaced: a project points its sources at a folder per
    /// environment. E0103 for an unset variable, E0304 for an undefined var.
    pub fn render_path(&self, field: &str, text: &str) -> Result<String, DefinitionError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${env:") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 6..];
            let end = after.find('}').ok_or_else(|| {
                self.error(
                    "E0103",
                    format!("{field}: unterminated '${{env:' (expected '}}')"),
                )
            })?;
            let name = &after[..end];
            let value = std::env::var(name).map_err(|_| {
                self.error(
                    "E0103",
                    format!("{field}: environment variable '{name}' is not set"),
                )
                .hint("export it, or remove the reference")
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        self.render(&out)
    }

    /// `model`'s token prices from `[prices."MODEL"]` in `spine.toml`, if set.
    pub fn price(&self, model: &str) -> Option<spine_schemas::definitions::PriceSection> {
        self.config.prices.get(model).copied()
    }

    /// Parses `sql` — one query over assets, which may hold `$name` parameters — as the `sql` kind
    /// does: the query with each table reference rewritten to its asset key's registered name, and
    /// the assets it reads. E0301 when it is not one query, E0303 for a table name that is not an
    /// asset key.
    pub fn query(
        &self,
        field: &str,
        sql: &str,
    ) -> Result<(String, Vec<AssetKey>), DefinitionError> {
        let analyzed = self.analyze_query(sql).map_err(|mut e| {
            e.message = format!("{field}: {}", e.message);
            e
        })?;
        Ok((analyzed.rewritten, analyzed.tables.into_iter().collect()))
    }

    /// [`crate::sql::analyze`] with its errors as this asset's: E0301 when `sql` is not one query,
    /// E0303 for a table name that is not an asset key.
    pub(crate) fn analyze_query(
        &self,
        sql: &str,
    ) -> Result<crate::sql::AnalyzedSql, DefinitionError> {
        let analyzed = crate::sql::analyze(sql).map_err(|e| {
            let what = match e {
                crate::sql::SqlError::Parse(m) => format!("SQL does not parse: {m}"),
                crate::sql::SqlError::Shape(m) => m,
            };
            self.error("E0301", what)
        })?;
        if let Some(bad) = analyzed.invalid_names.first() {
            return Err(self
                .error("E0303", format!("table name '{bad}' is not an asset key"))
                .hint(
                    "refer to upstream assets as schema.table (sales.orders) or \"sales/orders\"",
                ));
        }
        Ok(analyzed)
    }

    /// The project folder.
    pub fn project_root(&self) -> &Path {
        &self.config.root
    }

    /// `path` relative to the project folder, for messages.
    pub fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.config.root)
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|_| path.to_path_buf())
    }

    /// Where `field` is written: the first line at or after the asset's `key:` line that sets it.
    fn field_location(&self, field: &str) -> Location {
        let start = self.location.line.unwrap_or(1);
        let line = self
            .text
            .lines()
            .enumerate()
            .skip(start.saturating_sub(1))
            .find(|(_, l)| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .trim_start()
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
            .map(|(i, _)| i + 1);
        Location {
            file: self.location.file.clone(),
            line: line.or(self.location.line),
        }
    }
}

/// The field named by serde's "unknown field `x`, expected …" message.
fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.split("unknown field `").nth(1)?;
    rest.split('`').next()
}

/// The fields serde lists after "expected" in an unknown-field message.
fn expected_fields(msg: &str) -> impl Iterator<Item = &str> {
    msg.split_once("expected")
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split('`')
        .skip(1)
        .step_by(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unknown_field_in_serde_messages() {
        assert_eq!(
            unknown_field("unknown field `retires`, expected one of `sql`, `query`"),
            Some("retires")
        );
        assert_eq!(unknown_field("missing field `command`"), None);
        let msg = "unknown field `comand`, expected one of `command`, `env`, `output_format`";
        assert_eq!(
            expected_fields(msg).collect::<Vec<_>>(),
            ["command", "env", "output_format"]
        );
    }
}
