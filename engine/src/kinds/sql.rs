//! `sql`: DataFusion runs the asset's query (table references already rewritten to asset keys) in the
//! step's session, where every upstream is registered; the result streams to the writer. Its own
//! definition fields are `sql: FILE.sql` (relative to the YAML file) or `query: SELECT …`; the tables the
//! query reads are its upstreams, and the query text is its code version.

use super::{AssetKind, KindConfig, KindDefinition, StepContext, StepData, StepError, StepOutput};
use crate::error::DefinitionError;
use crate::project::AssetBody;
use crate::sql::{analyze, SqlError};
use futures::future::BoxFuture;

/// The `sql` kind.
pub struct SqlKind;

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
        let analyzed = analyze(&query).map_err(|e| {
            let what = match e {
                SqlError::Parse(m) => format!("SQL does not parse: {m}"),
                SqlError::Shape(m) => m,
            };
            at(def.error("E0301", what))
        })?;
        if let Some(bad) = analyzed.invalid_names.first() {
            return Err(
                at(def.error("E0303", format!("table name '{bad}' is not an asset key"))).hint(
                    "refer to upstream assets as schema.table (sales.orders) or \"sales/orders\"",
                ),
            );
        }
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
            let df = ctx
                .session
                .sql(rewritten)
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            let stream = df
                .execute_stream()
                .await
                .map_err(|e| StepError::datafusion("SQL error", &e))?;
            Ok(StepOutput::data(StepData::Stream(stream)))
        })
    }
}
