//! The online store: the newest snapshot of an asset (a feature view's latest cutoff), one value per
//! entity, in Redis, for serving.
//!
//! ```yaml
//! - key: online/driver_stats
//!   kind: online_snapshot
//!   from: features/driver_stats     # read as published (a held-back version never goes online)
//!   entities: [driver]
//!   timestamp: ts                   # the rows of its newest value are the snapshot
//!   url_env: SPINE_REDIS_URL        # the variable holding the redis:// URL (the default); never stored
//! ```
//!
//! A materialization writes every entity's row (a JSON object) into a new hash,
//! `spine:online:{asset}:v:{run}-{attempt}`, then points `spine:online:{asset}` at it and removes the
//! previous hash in one Lua script, so the switch is atomic; hashes a crashed write left behind are
//! removed too. Readers ([`get`]) read the pointer and the values in one script as well: a read never
//! mixes two versions, and a write that stops half-way is never seen. The asset's own table is the
//! snapshot it published.

use crate::feature_view::sql::ident;
use spine_engine::error::DefinitionError;
use spine_engine::hash::short_hash;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, SchemaProbe, StepContext, StepData, StepError,
    StepOutput, UpstreamSchemas,
};
use spine_engine::project::{AssetBody, AssetSpec};
use spine_engine::AssetKey;
use std::sync::Arc;

/// The default variable holding the Redis URL.
pub const DEFAULT_URL_ENV: &str = "SPINE_REDIS_URL";
const CODE: &str = "E0262";
/// Entities written per round trip.
const CHUNK: usize = 1000;

/// What can go wrong talking to the online store.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// Redis refused or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored value is not the JSON object Spine wrote.
    #[error("a stored value is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A validated `online_snapshot` definition.
#[derive(Debug, Clone)]
pub struct OnlineConfig {
    /// The asset whose newest snapshot goes online.
    pub from: AssetKey,
    /// Entity key columns.
    pub entities: Vec<String>,
    /// The snapshot time column.
    pub timestamp: String,
    /// The environment variable holding the Redis URL.
    pub url_env: String,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    from: String,
    entities: Vec<String>,
    timestamp: String,
    url_env: Option<String>,
}

/// The key holding the name of `asset`'s current hash.
pub fn pointer(asset: &AssetKey) -> String {
    format!("spine:online:{asset}")
}

/// A hash field naming one entity: its key values as a JSON array of strings (`["d1"]`).
pub fn entity_field(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

/// Points the asset at the new hash (ARGV[1]) and removes the previous one, atomically.
const SWITCH: &str = r"
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
if old and old ~= ARGV[1] then redis.call('UNLINK', old) end
return old";

/// The current hash's name and the values of the entities (ARGV), read atomically.
const READ: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('HMGET', v, unpack(ARGV))}";

/// The value of each entity (its key values) in `asset`'s current snapshot, and the snapshot's name;
/// `None` when nothing was published yet. All from one snapshot.
pub async fn get(
    url: &str,
    asset: &AssetKey,
    entities: &[Vec<String>],
) -> Result<Option<(String, Vec<Option<serde_json::Value>>)>, OnlineError> {
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let read = redis::Script::new(READ);
    let mut script = read.key(pointer(asset));
    for e in entities {
        script.arg(entity_field(e));
    }
    let got: Option<(String, Vec<Option<String>>)> = script.invoke_async(&mut con).await?;
    let Some((version, values)) = got else {
        return Ok(None);
    };
    let values = values
        .into_iter()
        .map(|v| v.map(|t| serde_json::from_str(&t)).transpose())
        .collect::<Result<_, _>>()?;
    Ok(Some((version, values)))
}

/// Writes `rows` (JSON objects) as `asset`'s new snapshot `version` and switches to it.
async fn publish(
    url: &str,
    asset: &AssetKey,
    version: &str,
    rows: &[(String, String)],
) -> Result<(), OnlineError> {
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let _: () = redis::cmd("UNLINK")
        .arg(version)
        .query_async(&mut con)
        .await?;
    for chunk in rows.chunks(CHUNK) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(version);
        for (field, value) in chunk {
            cmd.arg(field).arg(value);
        }
        let _: () = cmd.query_async(&mut con).await?;
    }
    let _: Option<String> = redis::Script::new(SWITCH)
        .key(pointer(asset))
        .arg(version)
        .invoke_async(&mut con)
        .await?;
    // Hashes of writes that stopped before their switch.
    let pattern = format!("{}:v:*", pointer(asset));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await?;
        let stale: Vec<&String> = keys.iter().filter(|k| k.as_str() != version).collect();
        if !stale.is_empty() {
            let current: Option<String> = redis::cmd("GET")
                .arg(pointer(asset))
                .query_async(&mut con)
                .await?;
            let stale: Vec<&String> = stale
                .into_iter()
                .filter(|k| current.as_deref() != Some(k.as_str()))
                .collect();
            if !stale.is_empty() {
                let _: () = redis::cmd("UNLINK")
                    .arg(stale)
                    .query_async(&mut con)
                    .await?;
            }
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn configure(def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
    let fields: Fields = def.parse()?;
    let from = AssetKey::parse(&fields.from).map_err(|e| {
        def.error(
            CODE,
            format!("from: '{}' is not an asset key: {e}", fields.from),
        )
        .hint("name the feature view to serve, e.g. from: features/driver_stats")
    })?;
    if fields.entities.is_empty() {
        return Err(def
            .error(CODE, "an online snapshot needs its entity key columns")
            .hint("e.g. entities: [driver]"));
    }
    let url_env = fields
        .url_env
        .clone()
        .unwrap_or_else(|| DEFAULT_URL_ENV.to_string());
    if url_env.is_empty() || url_env.contains(['$', '{', '}', ' ']) {
        return Err(def
            .error(
                CODE,
                format!("url_env: '{url_env}' is not an environment variable's name"),
            )
            .hint("name the variable that holds the URL, e.g. url_env: SPINE_REDIS_URL"));
    }
    let config = OnlineConfig {
        from: from.clone(),
        entities: fields.entities.clone(),
        timestamp: fields.timestamp.clone(),
        url_env,
    };
    let code = serde_json::to_vec(&fields).unwrap_or_default();
    let mut out = KindConfig::new(AssetBody::Kind(Arc::new(config)), short_hash(&code));
    out.upstreams = vec![from];
    Ok(out)
}

/// The rows of the newest snapshot.
fn latest_sql(c: &OnlineConfig) -> String {
    let (t, ts) = (ident(c.from.as_str()), ident(&c.timestamp));
    format!("SELECT * FROM {t} WHERE {ts} = (SELECT MAX({ts}) FROM {t})")
}

/// Each row as (entity field, JSON object).
fn rows(
    c: &OnlineConfig,
    batches: &[arrow::record_batch::RecordBatch],
) -> Result<Vec<(String, String)>, StepError> {
    let objects = spine_engine::kinds::rows_as_json(batches).map_err(StepError::permanent)?;
    let mut out = Vec::with_capacity(objects.len());
    for o in objects {
        let key: Vec<String> = c
            .entities
            .iter()
            .map(|k| match o.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        out.push((entity_field(&key), serde_json::Value::Object(o).to_string()));
    }
    Ok(out)
}

async fn execute(ctx: &StepContext) -> Result<StepOutput, StepError> {
    let c = ctx.spec.body.config::<OnlineConfig>().ok_or_else(|| {
        StepError::permanent("an online_snapshot asset without its configuration")
    })?;
    let url = std::env::var(&c.url_env).map_err(|_| {
        StepError::permanent(format!(
            "{} is not set: it holds the online store's redis:// URL (url_env)",
            c.url_env
        ))
    })?;
    let batches = ctx
        .session
        .sql(&latest_sql(c))
        .await
        .map_err(|d| StepError::datafusion("reading the newest snapshot", &d))?
        .collect()
        .await
        .map_err(|d| StepError::datafusion("reading the newest snapshot", &d))?;
    let rows = rows(c, &batches)?;
    let version = format!(
        "{}:v:{}-{}",
        pointer(&ctx.spec.key),
        ctx.run_id,
        ctx.attempt
    );
    publish(&url, &ctx.spec.key, &version, &rows)
        .await
        .map_err(|e| StepError::retryable(format!("publishing to the online store: {e}")))?;
    ctx.events
        .log(
            "info",
            &format!("{} entities online under {version}", rows.len()),
        )
        .await;
    let mut out = StepOutput::data(StepData::Batches(batches));
    out.metadata
        .insert("online_key".into(), serde_json::json!(version));
    out.metadata
        .insert("online_entities".into(), serde_json::json!(rows.len()));
    Ok(out)
}

async fn schema(spec: &AssetSpec, upstream: &UpstreamSchemas) -> SchemaProbe {
    let Some(c) = spec.body.config::<OnlineConfig>() else {
        return SchemaProbe::Unknown(String::new());
    };
    let session = match upstream.session(std::slice::from_ref(&c.from)) {
        Ok(s) => s,
        Err(why) => return SchemaProbe::Unknown(why),
    };
    let missing = upstream.get(&c.from).and_then(|s| {
        c.entities
            .iter()
            .chain([&c.timestamp])
            .find(|k| s.field_with_name(k).is_err())
    });
    let planned = match missing {
        Some(k) => Err(format!("'{}' has no column '{k}'", c.from)),
        None => session
            .sql(&latest_sql(c))
            .await
            .map(|df| Arc::new(df.schema().as_arrow().clone()))
            .map_err(|e| e.strip_backtrace()),
    };
    match planned {
        Ok(s) => SchemaProbe::Known(s),
        Err(m) => SchemaProbe::Invalid(
            DefinitionError::new(CODE, m)
                .asset(spec.key.as_str())
                .at_opt(spec.source.clone())
                .hint("`entities` and `timestamp` name columns of the `from` asset"),
        ),
    }
}

/// The `online_snapshot` kind.
pub struct OnlineSnapshotKind;

impl AssetKind for OnlineSnapshotKind {
    fn name(&self) -> &'static str {
        "online_snapshot"
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
