//! `sql`: DataFusion runs the asset's query (table references already rewritten to asset keys) in the
//! step's session, where every upstream is registered; the result streams to the writer. Its own
//! definition fields are `sql: FILE.sql` (relative to the YAML file) or `query: SELECT …`; the tables the
//! query reads are its upstreams, and the query text is its code version.

use super::{AssetKind, KindConfig, KindDefinition, StepContext, StepData, StepError, StepOutput};
use crate::error::DefinitionError;
use crate::project::AssetBody;
use futures::future::BoxFuture;

/// The `sql` kind.
pub struct SqlKind;

/// Partition placeholders a query may use, and the marker each stands for until the step runs (markers
/// survive parsing and the rewrite of table names inside string literals and as identifiers).
const PLACEHOLDERS: [(&str, &str); 4] = [
    ("partition_key", "__spine_partition_key__"),
    ("partition_start", "__spine_partition_start__"),
    ("partition_end", "__spine_partition_end__"),
    ("watermark", "__spine_watermark__"),
];

/// Whether a query uses `{{ watermark }}` (its asset must be incremental).
pub fn uses_watermark(rewritten: &str) -> bool {
    rewritten.contains(PLACEHOLDERS[3].1)
}

/// The query as `assets check` plans it, before any step ran: `{{ watermark }}` is NULL (as on an
/// incremental asset's first run); partition markers sit in string literals and plan as they are.
pub fn for_planning(rewritten: &str) -> std::borrow::Cow<'_, str> {
    if uses_watermark(rewritten) {
        rewritten.replace(PLACEHOLDERS[3].1, "NULL").into()
    } else {
        rewritten.into()
    }
}

/// The marker of `{{ partition_key.NAME }}` (dimension NAME of a multi-dimensional key) is this prefix,
/// NAME, then `__`.
const DIMENSION_MARKER: &str = "__spine_partition_dim_";

/// Whether a query uses partition placeholders (its asset must be partitioned).
pub fn uses_partition(rewritten: &str) -> bool {
    PLACEHOLDERS[..3].iter().any(|(_, m)| rewritten.contains(m))
        || rewritten.contains(DIMENSION_MARKER)
}

/// The dimensions a query names with `{{ partition_key.NAME }}`.
pub fn dimensions_used(rewritten: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in rewritten.match_indices(DIMENSION_MARKER) {
        let rest = &rewritten[i + DIMENSION_MARKER.len()..];
        // The name is plain (letters, digits, '_'); the marker ends at the last "__" of that run.
        let run: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if let Some(name) = run.strip_suffix("__") {
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Replaces `{{ partition_key }}`, `{{ partition_start }}` and `{{ partition_end }}` with markers;
/// any other `{{ … }}` is an error.
fn to_markers(query: &str) -> Result<String, String> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").ok_or("a `{{` is not closed by `}}`")?;
        let name = after[..j].trim();
        if let Some(dim) = name.strip_prefix("partition_key.") {
            let plain =
                !dim.is_empty() && dim.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(format!("'{{{{ {name} }}}}' does not name a dimension: write {{{{ partition_key.DIMENSION }}}}"));
            }
            out.push_str(&format!("{DIMENSION_MARKER}{dim}__"));
            rest = &after[j + 2..];
            continue;
        }
        let (_, marker) = PLACEHOLDERS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| {
                format!("unknown placeholder '{{{{ {name} }}}}'; a query can use {{{{ partition_key }}}}, {{{{ partition_key.DIMENSION }}}}, {{{{ partition_start }}}} and {{{{ partition_end }}}}")
            })?;
        out.push_str(marker);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The query with this step's partition values in place of the markers.
fn fill_markers<'a>(
    rewritten: &'a str,
    ctx: &StepContext,
) -> Result<std::borrow::Cow<'a, str>, StepError> {
    // The watermark: a literal of the column's type, or NULL (the first run).
    let rewritten: std::borrow::Cow<'a, str> = if uses_watermark(rewritten) {
        std::borrow::Cow::Owned(rewritten.replace(
            PLACEHOLDERS[3].1,
            ctx.watermark.as_deref().unwrap_or("NULL"),
        ))
    } else {
        std::borrow::Cow::Borrowed(rewritten)
    };
    if !uses_partition(&rewritten) {
        return Ok(rewritten);
    }
    let Some(p) = &ctx.step.partition else {
        return Err(StepError::permanent(
            "the query uses partition placeholders but this step has no partition",
        ));
    };
    let window = ctx.spec.partitions.as_ref().and_then(|d| d.window(p));
    let mut sql = rewritten.replace(PLACEHOLDERS[0].1, &p.as_str().replace('\'', "''"));
    for (i, value) in [
        (1, window.as_ref().map(|w| w.start)),
        (2, window.as_ref().map(|w| w.end)),
    ] {
        if sql.contains(PLACEHOLDERS[i].1) {
            let v = value.ok_or_else(|| {
                StepError::permanent(format!(
                    "{{{{ {} }}}} needs time-window partitions; '{p}' has no window",
                    PLACEHOLDERS[i].0
                ))
            })?;
            sql = sql.replace(PLACEHOLDERS[i].1, &v.to_rfc3339());
        }
    }
    // Longest names first: a name's marker may contain a shorter name's.
    let mut dims = dimensions_used(&sql);
    dims.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for dim in dims {
        let value = ctx
            .spec
            .partitions
            .as_ref()
            .and_then(|d| d.dimension(p, &dim))
            .ok_or_else(|| {
                StepError::permanent(format!(
                    "{{{{ partition_key.{dim} }}}}: '{p}' has no dimension '{dim}'"
                ))
            })?;
        sql = sql.replace(
            &format!("{DIMENSION_MARKER}{dim}__"),
            &value.replace('\'', "''"),
        );
    }
    Ok(std::borrow::Cow::Owned(sql))
}

/// The `sql` kind's fields.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlFields {
    /// A `.sql` file, relative to the YAML file.
    sql: Option<String>,
    /// The query inline.
    query: Option<String>,
}

impl AssetKind for SqlKind {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        let fields: SqlFields = def.parse()?;
        let (raw, file) = match (fields.sql, fields.query) {
            (Some(f), None) => {
                let f = def.render_path("sql", &f)?;
                let p = def.dir.join(&f);
                let t = std::fs::read_to_string(&p).map_err(|e| {
                    def.error("E0206", format!("cannot read SQL file '{f}': {e}"))
                        .hint("the path is relative to the YAML file")
                })?;
                (crate::project::strip_bom(&t).to_string(), Some(p))
            }
            (None, Some(q)) => (q, None),
            (Some(_), Some(_)) => {
                return Err(def.error(
                    "E0206",
                    "set either `sql:` (a file) or `query:` (inline), not both",
                ))
            }
            (None, None) => {
                return Err(def.error(
                    "E0206",
                    "a sql asset needs `sql: FILE.sql` or `query: SELECT …`",
                ))
            }
        };
        // Errors in the query point at the .sql file when there is one.
        let at = |e: DefinitionError| match &file {
            Some(p) => e.at(def.relative(p), None),
            None => e,
        };
        let query = def.render(&raw).map_err(at)?;
        let templated = to_markers(&query).map_err(|m| at(def.error("E0301", m)))?;
        let analyzed = def.analyze_query(&templated).map_err(at)?;
        check_placeholders(def, &analyzed.rewritten)?;
        let unread_deps = def
            .deps
            .iter()
            .filter(|d| !analyzed.tables.contains(*d))
            .cloned()
            .collect();
        Ok(KindConfig {
            code_version: crate::hash::short_hash(query.as_bytes()),
            upstreams: analyzed.tables.iter().cloned().collect(),
            unread_deps,
            lookbacks: Default::default(),
            body: AssetBody::Sql {
                query,
                rewritten: analyzed.rewritten,
                file,
            },
        })
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let AssetBody::Sql { rewritten, .. } = &ctx.spec.body else {
                return Err(StepError::permanent(
                    "internal: sql kind got a non-SQL body",
                ));
            };
            let sql = fill_markers(rewritten, ctx)?;
            let df = ctx
                .session
                .sql(&sql)
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            // Tables are registered under their asset keys; only upstreams are assets.
            let asset = |name: &str| {
                crate::key::AssetKey::parse(name)
                    .ok()
                    .filter(|k| ctx.spec.deps.contains(k))
            };
            let columns = crate::column_lineage::of_plan(df.logical_plan(), &asset);
            let stream = df
                .execute_stream()
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            let mut out = StepOutput::data(StepData::Stream(stream));
            out.columns = columns;
            Ok(out)
        })
    }
}

/// The query's partition placeholders against the asset's partitions: `{{ partition_key }}` needs
/// partitions, `{{ partition_key.NAME }}` a multi-dimensional definition with that dimension (E0210).
fn check_placeholders(def: &KindDefinition<'_>, rewritten: &str) -> Result<(), DefinitionError> {
    let Some(parsed) = def.partitions else {
        if uses_partition(rewritten) {
            return Err(def
                .error(
                    "E0210",
                    "the query uses {{ partition_key }} (or another partition placeholder), but the asset has no `partitions:`",
                )
                .hint("add e.g. `partitions: {daily: {start: 2026-01-01}}`"));
        }
        return Ok(());
    };
    let columns = parsed.columns();
    let multi = matches!(parsed.kind, crate::partitions::PartitionsKind::Multi(_));
    match dimensions_used(rewritten)
        .into_iter()
        .find(|d| !multi || !columns.contains(d))
    {
        Some(d) => Err(def
            .error(
                "E0210",
                format!("the query uses {{{{ partition_key.{d} }}}}, but the partitions have no dimension '{d}'"),
            )
            .hint(if multi {
                format!("its dimensions: {}", columns.join(", "))
            } else {
                "dimensions belong to `partitions: {multi: {NAME: DEFINITION, …}}`; use {{ partition_key }}".into()
            })),
        None => Ok(()),
    }
}
