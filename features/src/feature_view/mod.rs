//! The `feature_view` kind: aggregations of an upstream asset's events per entity over trailing
//! windows, as snapshots taken at cutoffs:
//!
//! ```yaml
//! - key: features/driver_stats
//!   kind: feature_view
//!   from: events/trips               # the events
//!   entities: [driver]               # entity key column(s)
//!   timestamp: ts                    # event time (also the output's cutoff column)
//!   partitions: {daily: {start: 2026-01-01}}   # one snapshot per partition, at its end
//!   ttl: 30d                         # optional: rows for entities idle up to this long
//!   features:
//!     - {aggregations: [count], windows: [1h, 1d, 7d]}           # count_1h, count_1d, count_7d
//!     - {column: fare, aggregations: [sum, mean], windows: [7d]} # fare_sum_7d, fare_mean_7d
//!     - {column: rider, aggregations: [distinct], windows: [30d]}
//! ```
//!
//! Each row is an entity's features as known strictly before the cutoff: a snapshot at `c` aggregates
//! the events of `[c − w, c)` for each window `w`. A time-partitioned view takes one snapshot per
//! partition, at the end of its window, and reads its upstream's partitions through the `{last: N}`
//! mapping its longest window needs (derived when the project loads); an unpartitioned view takes them
//! every `every` (default `1d`) through the day after the newest event. Both run the query of
//! [`sql`], so a backfill of every partition equals one unpartitioned computation.

pub mod sql;
mod tiles;

use spine_engine::column_lineage::of_plan;
use spine_engine::duration::parse_duration;
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput, UpstreamSchemas,
};
use spine_engine::partitions::PartitionsKind;
use spine_engine::project::{AssetBody, AssetSpec};
use spine_engine::AssetKey;
use sql::{raw, units_per_second, view_sql, Cutoffs, ViewQuery};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// An aggregation over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Events (or non-null values of the column).
    Count,
    /// Sum.
    Sum,
    /// Mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// The value of the newest event.
    Last,
    /// Distinct non-null values.
    Distinct,
}

impl Aggregation {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "count" => Aggregation::Count,
            "sum" => Aggregation::Sum,
            "mean" | "avg" => Aggregation::Mean,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "last" => Aggregation::Last,
            "distinct" | "count_distinct" => Aggregation::Distinct,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Mean => "mean",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Last => "last",
            Aggregation::Distinct => "distinct",
        }
    }
}

/// One output column: an aggregation of a column over a window.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Output column name: `{column}_{aggregation}_{window}` (`count_{window}` without a column).
    pub name: String,
    /// The aggregated column (none: `count` of events).
    pub column: Option<String>,
    /// The aggregation.
    pub aggregation: Aggregation,
    /// The trailing window.
    pub window: Duration,
}

/// A validated `feature_view` definition.
#[derive(Debug, Clone)]
pub struct FeatureViewConfig {
    /// The events' asset.
    pub from: AssetKey,
    /// Entity key columns.
    pub entities: Vec<String>,
    /// The event timestamp column.
    pub timestamp: String,
    /// Rows for entities idle up to this long (none: the longest window).
    pub ttl: Option<Duration>,
    /// The snapshot interval of an unpartitioned view.
    pub every: Duration,
    /// The output columns.
    pub features: Vec<Feature>,
}

impl FeatureViewConfig {
    /// How far back an entity's events give it a row: the longest window, or the TTL if longer.
    pub fn horizon(&self) -> Duration {
        let longest = self.features.iter().map(|f| f.window).max();
        longest
            .unwrap_or_default()
            .max(self.ttl.unwrap_or_default())
    }

    /// The query over `table` whose timestamp column is `timestamp_type` (and schema `schema`, when
    /// known).
    pub fn query<'a>(
        &'a self,
        table: &'a str,
        timestamp_type: &'a arrow::datatypes::DataType,
        schema: Option<&'a arrow::datatypes::Schema>,
    ) -> ViewQuery<'a> {
        ViewQuery {
            table,
            entities: &self.entities,
            timestamp: &self.timestamp,
            timestamp_type,
            features: &self.features,
            horizon: self.horizon(),
            schema,
        }
    }
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct FeatureFields {
    column: Option<String>,
    aggregations: Vec<String>,
    windows: Vec<String>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    from: String,
    entities: Vec<String>,
    timestamp: String,
    ttl: Option<String>,
    every: Option<String>,
    features: Vec<FeatureFields>,
}

/// The `feature_view` kind.
pub struct FeatureViewKind;

const CODE: &str = "E0261";

fn duration(
    def: &KindDefinition<'_>,
    field: &str,
    text: &str,
) -> Result<Duration, DefinitionError> {
    match parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(def.error(CODE, format!("{field} '{text}' is zero"))),
        Err(e) => Err(def
            .error(CODE, format!("{field} '{text}' is not a duration: {e}"))
            .hint("write a number and a unit: 30m, 1h, 7d")),
    }
}

fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let fields: Fields = def.parse()?;
    let from = AssetKey::parse(&fields.from).map_err(|e| {
        def.error(
            CODE,
            format!("from: '{}' is not an asset key: {e}", fields.from),
        )
        .hint("name the asset holding the events, e.g. from: events/trips")
    })?;
    if fields.entities.is_empty() {
        return Err(def
            .error(CODE, "a feature view needs at least one entity key column")
            .hint("e.g. entities: [driver_id]"));
    }
    if fields.features.is_empty() {
        return Err(def
            .error(CODE, "a feature view needs at least one feature")
            .hint("e.g. features: [{aggregations: [count], windows: [1d, 7d]}]"));
    }
    let mut features = Vec::new();
    for f in &fields.features {
        if f.aggregations.is_empty() || f.windows.is_empty() {
            return Err(def
                .error(CODE, "each feature needs `aggregations:` and `windows:`")
                .hint("e.g. {column: fare, aggregations: [sum, mean], windows: [1d, 7d]}"));
        }
        for a in &f.aggregations {
            let aggregation = Aggregation::parse(a).ok_or_else(|| {
                def.error(CODE, format!("unknown aggregation '{a}'"))
                    .hint("use count, sum, mean, min, max, last or distinct")
            })?;
            if f.column.is_none() && aggregation != Aggregation::Count {
                return Err(def
                    .error(CODE, format!("'{a}' needs a `column:`"))
                    .hint("only `count` counts events without a column"));
            }
            for w in &f.windows {
                let window = duration(def, "window", w)?;
                let label: String = w.chars().filter(|c| !c.is_whitespace()).collect();
                let name = match &f.column {
                    Some(c) => format!("{c}_{}_{label}", aggregation.as_str()),
                    None => format!("count_{label}"),
                };
                features.push(Feature {
                    name,
                    column: f.column.clone(),
                    aggregation,
                    window,
                });
            }
        }
    }
    let mut names = BTreeSet::new();
    let reserved = fields.entities.iter().chain([&fields.timestamp]);
    for n in reserved
        .cloned()
        .chain(features.iter().map(|f| f.name.clone()))
    {
        if n.starts_with("__spine") || !names.insert(n.clone()) {
            return Err(def
                .error(CODE, format!("the output would have two columns named '{n}'"))
                .hint("list each aggregation and window of a column once; key and timestamp names are taken"));
        }
    }
    let ttl = fields
        .ttl
        .as_deref()
        .map(|t| duration(def, "ttl", t))
        .transpose()?;
    let every = match (&fields.every, def.partitions) {
        (Some(_), Some(_)) => {
            return Err(def
                .error(CODE, "`every` is for an unpartitioned view; a partitioned one takes a snapshot per partition")
                .hint("drop `every`, or drop `partitions`"))
        }
        (_, Some(p)) if !matches!(p.kind, PartitionsKind::Time(_)) => {
            return Err(def
                .error(CODE, "a feature view's partitions are time windows (a snapshot at the end of each)")
                .hint("use e.g. partitions: {daily: {start: 2026-01-01}}"))
        }
        (Some(e), None) => duration(def, "every", e)?,
        (None, _) => Duration::from_secs(86_400),
    };
    let config = FeatureViewConfig {
        from: from.clone(),
        entities: fields.entities.clone(),
        timestamp: fields.timestamp.clone(),
        ttl,
        every,
        features,
    };
    let code = serde_json::to_vec(&fields).unwrap_or_default();
    let horizon = config.horizon();
    let mut out = KindConfig::new(AssetBody::Kind(Arc::new(config)), short_hash(&code));
    out.upstreams = vec![from.clone()];
    out.lookbacks.insert(from, horizon);
    Ok(out)
}

fn config(spec: &AssetSpec) -> Result<&FeatureViewConfig, StepError> {
    spec.body
        .config::<FeatureViewConfig>()
        .ok_or_else(|| StepError::permanent("a feature_view asset without its configuration"))
}

/// The cutoffs of a step: its partition's end, or the grid of an unpartitioned view.
fn cutoffs(
    ctx: &StepContext,
    c: &FeatureViewConfig,
    per_second: i64,
) -> Result<Cutoffs, StepError> {
    match (&ctx.spec.partitions, &ctx.step.partition) {
        (Some(def), Some(p)) => {
            let w = def.window(p).ok_or_else(|| {
                StepError::permanent(format!("partition '{p}' has no time window"))
            })?;
            let end = w.end.timestamp_nanos_opt().ok_or_else(|| {
                StepError::permanent(format!("partition '{p}' ends out of range"))
            })?;
            Ok(Cutoffs::At(
                (end as i128 * per_second as i128 / 1_000_000_000) as i64,
            ))
        }
        _ => Ok(Cutoffs::Every(raw(c.every, per_second))),
    }
}

async fn execute(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let c = config(&ctx.spec)?;
    let table = c.from.as_str();
    let upstream = ctx
        .session
        .table(table)
        .await
        .map_err(|d| StepError::datafusion("reading the events", &d))?;
    let field = upstream
        .schema()
        .field_with_unqualified_name(&c.timestamp)
        .map_err(|_| StepError::permanent(format!("'{table}' has no column '{}'", c.timestamp)))?;
    let ts_type = field.data_type().clone();
    let upstream_schema = upstream.schema().as_arrow().clone();
    let query = c.query(table, &ts_type, Some(&upstream_schema));
    let per_second = units_per_second(&ts_type).unwrap_or(1);
    let query = view_sql(&query, cutoffs(ctx, c, per_second)?).map_err(StepError::permanent)?;
    let df = ctx
        .session
        .sql(&query)
        .await
        .map_err(|d| StepError::datafusion("planning the feature view", &d))?;
    let columns = of_plan(df.logical_plan(), &|t: &str| {
        (t == table).then(|| c.from.clone())
    });
    let stream = df
        .execute_stream()
        .await
        .map_err(|d| StepError::datafusion("computing the feature view", &d))?;
    let mut out = StepOutput::data(StepData::Stream(stream));
    out.columns = columns;
    Ok(out)
}

async fn schema(spec: &AssetSpec, upstream: &UpstreamSchemas) -> SchemaProbe {
    let Some(c) = spec.body.config::<FeatureViewConfig>() else {
        return SchemaProbe::Unknown(String::new());
    };
    let session = match upstream.session(std::slice::from_ref(&c.from)) {
        Ok(s) => s,
        Err(why) => return SchemaProbe::Unknown(why),
    };
    let invalid = |m: String| {
        SchemaProbe::Invalid(
            DefinitionError::new(CODE, m)
                .asset(spec.key.as_str())
                .at_opt(spec.source.clone()),
        )
    };
    let table = c.from.as_str();
    let Some(ts_type) = upstream
        .get(&c.from)
        .and_then(|s| s.field_with_name(&c.timestamp).ok())
        .map(|f| f.data_type().clone())
    else {
        return invalid(format!("'{table}' has no column '{}'", c.timestamp));
    };
    let query = match view_sql(&c.query(table, &ts_type, None), Cutoffs::At(0)) {
        Ok(q) => q,
        Err(m) => return invalid(m),
    };
    match session.sql(&query).await {
        Ok(df) => SchemaProbe::Known(Arc::new(df.schema().as_arrow().clone())),
        Err(e) => invalid(format!(
            "the feature view does not plan over '{table}': {}",
            e.strip_backtrace()
        )),
    }
}

impl AssetKind for FeatureViewKind {
    fn name(&self) -> &'static str {
        "feature_view"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        configure(def)
    }

    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> futures::future::BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(execute(ctx))
    }

    fn schema<'a>(
        &'a self,
        spec: &'a AssetSpec,
        upstream: &'a UpstreamSchemas,
    ) -> futures::future::BoxFuture<'a, SchemaProbe> {
        Box::pin(schema(spec, upstream))
    }
}
