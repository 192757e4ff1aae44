//! The `training_set` kind: a point-in-time correct join ([`crate::point_in_time`]) of an entity/label
//! asset with feature assets, materialized like any asset (planned, recorded, versioned,
//! reproducible):
//!
//! ```yaml
//! - key: training/drivers
//!   kind: training_set
//!   entities: {asset: labels/drivers, timestamp: ts}
//!   features:
//!     - asset: features/driver_stats      # read at the version this run knows
//!       name: stats                       # output columns stats__rate, …  (default: the key's last part)
//!       keys: [driver]
//!       timestamp: event_ts
//!       created: created_at               # optional tie-breaker
//!       ttl: 2h                           # optional: ms, s, m, h or d
//!       columns: [rate]
//! ```
//!
//! Its upstreams are the entity asset and every feature asset; its code version covers the whole
//! definition.

use crate::asof::point_in_time_table;
use crate::point_in_time::{point_in_time_join, Entities, FeatureView, PitError};
use spine_engine::duration::parse_duration;
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput, UpstreamSchemas,
};
use spine_engine::project::{AssetBody, AssetSpec};
use spine_engine::AssetKey;
use std::sync::Arc;

/// The `training_set` kind.
pub struct TrainingSetKind;

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct EntityFields {
    asset: String,
    timestamp: String,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct FeatureFields {
    asset: String,
    name: Option<String>,
    keys: Vec<String>,
    timestamp: String,
    created: Option<String>,
    ttl: Option<String>,
    columns: Vec<String>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    entities: EntityFields,
    features: Vec<FeatureFields>,
}

/// A validated `training_set` definition.
#[derive(Debug, Clone)]
pub struct TrainingSetConfig {
    /// The entity/label rows.
    pub entities: Entities,
    /// The feature views joined onto them.
    pub views: Vec<FeatureView>,
}

fn asset(def: &KindDefinition<'_>, text: &str) -> Result<AssetKey, DefinitionError> {
    AssetKey::parse(text).map_err(|e| {
        def.error("E0260", format!("'{text}' is not an asset key: {e}"))
            .hint("name an asset of the project, e.g. features/driver_stats")
    })
}

fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let fields: Fields = def.parse()?;
    if fields.features.is_empty() {
        return Err(def
            .error("E0260", "a training set needs at least one feature view")
            .hint("list them under `features:`"));
    }
    let entity_key = asset(def, &fields.entities.asset)?;
    let mut upstreams = vec![entity_key.clone()];
    let mut views = Vec::new();
    for f in &fields.features {
        let key = asset(def, &f.asset)?;
        if f.keys.is_empty() || f.columns.is_empty() {
            return Err(def
                .error(
                    "E0260",
                    format!("feature view '{key}' needs `keys:` and `columns:`"),
                )
                .hint("e.g. keys: [driver_id], columns: [trips_7d]"));
        }
        let ttl = match &f.ttl {
            None => None,
            Some(t) => Some(parse_duration(t).map_err(|e| {
                def.error(
                    "E0260",
                    format!("ttl '{t}' of '{key}' is not a duration: {e}"),
                )
                .hint("write a number and a unit: 30s, 15m, 2h or 7d")
            })?),
        };
        let name = f.name.clone().unwrap_or_else(|| {
            key.as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        });
        views.push(FeatureView {
            table: key.as_str().to_string(),
            name,
            keys: f.keys.clone(),
            timestamp: f.timestamp.clone(),
            created: f.created.clone(),
            ttl,
            columns: f.columns.clone(),
        });
        upstreams.push(key);
    }
    let config = TrainingSetConfig {
        entities: Entities {
            table: entity_key.as_str().to_string(),
            timestamp: fields.entities.timestamp.clone(),
        },
        views,
    };
    // Refuse what the join refuses (two outputs of one name) when the project loads.
    crate::point_in_time::point_in_time_sql(&config.entities, &config.views)
        .map_err(|e| def.error("E0260", e.to_string()))?;
    let code = serde_json::to_vec(&fields).unwrap_or_default();
    let mut out = KindConfig::new(AssetBody::Kind(Arc::new(config)), short_hash(&code));
    out.upstreams = upstreams;
    Ok(out)
}

async fn execute(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let config =
        ctx.spec.body.config::<TrainingSetConfig>().ok_or_else(|| {
            StepError::permanent("a training_set asset without its configuration")
        })?;
    let batch = point_in_time_table(&ctx.session, &config.entities, &config.views)
        .await
        .map_err(|e| match e {
            PitError::Definition(m) => StepError::permanent(m),
            PitError::DataFusion(d) => StepError::datafusion("joining the feature views", &d),
        })?;
    let columns = lineage(
        config,
        batch.schema().fields().iter().map(|f| f.name().as_str()),
    );
    let mut out = StepOutput::data(StepData::Batches(vec![batch]));
    out.columns = columns;
    Ok(out)
}

/// Column lineage of the join: entity columns are the entity asset's; `{view}__{column}` is the
/// view's column; the keys and timestamps of both sides decide which row each comes from.
fn lineage<'a>(
    config: &TrainingSetConfig,
    outputs: impl Iterator<Item = &'a str>,
) -> spine_engine::column_lineage::ColumnLineage {
    use spine_engine::project::columns::{ColumnSource, How, OutputColumn};
    let key = |t: &str| AssetKey::parse(t).ok();
    let source = |asset: &str, column: &str, how: How| {
        key(asset).map(|asset| ColumnSource {
            asset,
            column: column.to_string(),
            how,
        })
    };
    let entities = &config.entities;
    outputs
        .map(|name| {
            let view = config.views.iter().find_map(|v| {
                name.strip_prefix(&format!("{}__", v.name))
                    .filter(|c| v.columns.iter().any(|x| x == c))
                    .map(|c| (v, c))
            });
            let mut sources = Vec::new();
            match view {
                Some((v, c)) => {
                    sources.extend(source(&v.table, c, How::Identity));
                    for k in v.keys.iter().chain([&v.timestamp]) {
                        sources.extend(source(&v.table, k, How::Filter));
                        if k != &v.timestamp {
                            sources.extend(source(&entities.table, k, How::Filter));
                        }
                    }
                    sources.extend(source(&entities.table, &entities.timestamp, How::Filter));
                }
                None => sources.extend(source(&entities.table, name, How::Identity)),
            }
            OutputColumn {
                column: name.to_string(),
                sources,
            }
        })
        .collect()
}

/// The join planned over the upstreams' schemas, for `assets check`.
async fn schema(spec: &AssetSpec, upstream: &UpstreamSchemas) -> SchemaProbe {
    let Some(config) = spec.body.config::<TrainingSetConfig>() else {
        return SchemaProbe::Unknown(String::new());
    };
    let session = match upstream.session(&spec.deps) {
        Ok(s) => s,
        Err(why) => return SchemaProbe::Unknown(why),
    };
    match point_in_time_join(&session, &config.entities, &config.views).await {
        Ok(df) => SchemaProbe::Known(Arc::new(df.schema().as_arrow().clone())),
        Err(e) => SchemaProbe::Invalid(
            DefinitionError::new(
                "E0260",
                format!(
                    "the training set does not plan over its upstreams: {}",
                    match e {
                        PitError::Definition(m) => m,
                        PitError::DataFusion(d) => d.strip_backtrace(),
                    }
                ),
            )
            .asset(spec.key.as_str())
            .at_opt(spec.source.clone())
            .hint(
                "the entity and feature assets need the key, timestamp and feature columns named",
            ),
        ),
    }
}

impl AssetKind for TrainingSetKind {
    fn name(&self) -> &'static str {
        "training_set"
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
