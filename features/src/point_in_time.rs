//! Point-in-time joins with Feast's semantics: for each row of an entity table (entity keys and a
//! timestamp per row), each feature view contributes its newest row for the same entity with
//! `row_ts − ttl ≤ feature_ts ≤ row_ts`, ties broken by the later creation time. Nothing from after a
//! row's timestamp reaches it, and a view with no row inside the window gives NULLs (the entity row is
//! kept). Every entity row appears exactly once, in its input order.
//!
//! The join is one DataFusion query over tables registered in a session, so it streams and spills like
//! any other query: a per-view range join on the entity keys and `feature_ts ≤ row_ts`, ranked per
//! entity row (`ROW_NUMBER() … ORDER BY feature_ts DESC, created DESC`), the first kept.

use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use std::time::Duration;

/// Why a point-in-time join cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PitError {
    /// The definition is not usable (no views, no keys, a column used twice in the output).
    #[error("{0}")]
    Definition(String),
    /// DataFusion refused the query (an unknown table or column, incomparable types).
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// The entity table: the rows to which features are joined.
#[derive(Debug, Clone)]
pub struct Entities {
    /// The table's name in the session.
    pub table: String,
    /// Its timestamp column (the time each row's features must be known at).
    pub timestamp: String,
}

/// One feature view as a point-in-time join reads it.
#[derive(Debug, Clone)]
pub struct FeatureView {
    /// The table's name in the session.
    pub table: String,
    /// The output columns are named `{name}__{column}`.
    pub name: String,
    /// Entity key columns, named the same in the entity table.
    pub keys: Vec<String>,
    /// The event timestamp column.
    pub timestamp: String,
    /// A creation time column that breaks ties between rows of one event timestamp (later wins).
    pub created: Option<String>,
    /// How old a feature row may be at the entity row's time; `None`: any age.
    pub ttl: Option<Duration>,
    /// The feature columns taken.
    pub columns: Vec<String>,
}

/// `"c"` for SQL.
fn ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// Internal column names; an entity or view column of one of these names is refused.
const ROW: &str = "__spine_row";
const RANK: &str = "__spine_rank";

/// The SQL of the join of `views` onto `entities`, with the internal row number column `__spine_row`
/// still in its output (see [`point_in_time_join`]).
pub fn point_in_time_sql(entities: &Entities, views: &[FeatureView]) -> Result<String, PitError> {
    if views.is_empty() {
        return Err(PitError::Definition(
            "a point-in-time join needs at least one feature view".into(),
        ));
    }
    let mut outputs = std::collections::BTreeSet::new();
    let mut ctes = vec![format!(
        "__spine_rows AS (SELECT *, ROW_NUMBER() OVER () AS {ROW} FROM {})",
        ident(&entities.table)
    )];
    let mut select = vec!["r.*".to_string()];
    let mut joins = Vec::new();
    for (i, v) in views.iter().enumerate() {
        if v.keys.is_empty() {
            return Err(PitError::Definition(format!(
                "feature view '{}' has no entity key",
                v.name
            )));
        }
        let used = v
            .keys
            .iter()
            .chain(&v.columns)
            .chain(std::iter::once(&v.timestamp))
            .chain(&v.created);
        if let Some(bad) = used
            .clone()
            .find(|c| c.as_str() == ROW || c.as_str() == RANK)
        {
            return Err(PitError::Definition(format!(
                "feature view '{}' uses the reserved column name '{bad}'",
                v.name
            )));
        }
        let on = v
            .keys
            .iter()
            .map(|k| format!("r.{k} = f.{k}", k = ident(k)))
            .chain(std::iter::once(format!(
                "f.{} <= r.{}",
                ident(&v.timestamp),
                ident(&entities.timestamp)
            )))
            .chain(v.ttl.map(|ttl| {
                format!(
                    "f.{} >= r.{} - INTERVAL '{} milliseconds'",
                    ident(&v.timestamp),
                    ident(&entities.timestamp),
                    ttl.as_millis()
                )
            }))
            .collect::<Vec<_>>()
            .join(" AND ");
        let order = std::iter::once(format!("f.{} DESC", ident(&v.timestamp)))
            .chain(v.created.iter().map(|c| format!("f.{} DESC", ident(c))))
            .collect::<Vec<_>>()
            .join(", ");
        let mut taken = Vec::new();
        for c in &v.columns {
            let out = format!("{}__{c}", v.name);
            if !outputs.insert(out.clone()) {
                return Err(PitError::Definition(format!(
                    "the output column '{out}' comes twice; give the views distinct names"
                )));
            }
            taken.push(format!("f.{} AS {}", ident(c), ident(&out)));
            select.push(format!("v{i}.{}", ident(&out)));
        }
        ctes.push(format!(
            "__spine_v{i} AS (SELECT * FROM (SELECT r.{ROW}, {taken}, ROW_NUMBER() OVER \
             (PARTITION BY r.{ROW} ORDER BY {order}) AS {RANK} FROM __spine_rows r JOIN {table} f \
             ON {on}) WHERE {RANK} = 1)",
            taken = taken.join(", "),
            table = ident(&v.table),
        ));
        joins.push(format!(
            "LEFT JOIN __spine_v{i} v{i} ON r.{ROW} = v{i}.{ROW}"
        ));
    }
    Ok(format!(
        "WITH {} SELECT {} FROM __spine_rows r {} ORDER BY r.{ROW}",
        ctes.join(", "),
        select.join(", "),
        joins.join(" ")
    ))
}

/// The point-in-time join of `views` onto `entities` in `ctx` (every table registered there): the
/// entity table's columns, then each view's columns as `{view}__{column}`, one row per entity row in
/// input order.
pub async fn point_in_time_join(
    ctx: &SessionContext,
    entities: &Entities,
    views: &[FeatureView],
) -> Result<DataFrame, PitError> {
    let sql = point_in_time_sql(entities, views)?;
    Ok(ctx.sql(&sql).await?.drop_columns(&[ROW])?)
}
