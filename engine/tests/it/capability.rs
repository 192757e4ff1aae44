//! Kinds with capabilities (issue 28, item 3): a kind defined here, in a test, whose assets are read
//! in place — a number kept in a text file, observed rather than computed — works end to end through
//! the engine without any engine code naming it: it is observed, downstream reads exactly what was
//! observed, nothing is copied into the warehouse, an unchanged file is not recorded again, and a
//! file changed behind the engine's back fails the read instead of feeding unobserved data.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use spine_engine::error::DefinitionError;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, KindRegistry, Look, ReadsInPlace, StepContext,
    StepError, StepOutput,
};
use spine_engine::project::AssetBody;
use spine_engine::store::StepStatus;
use spine_engine::{Engine, MaterializeRequest};
use std::path::PathBuf;
use std::sync::Arc;

/// `kind: counter` with `file: n.txt`: the number in the file.
struct CounterKind;

#[derive(serde::Deserialize)]
struct CounterConfig {
    file: PathBuf,
}

fn table(n: i64) -> Arc<dyn TableProvider> {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![n]))]).unwrap();
    Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
}

impl CounterConfig {
    fn read(&self) -> Result<i64, String> {
        let text = std::fs::read_to_string(&self.file).map_err(|e| e.to_string())?;
        text.trim()
            .parse()
            .map_err(|e| format!("not a number: {e}"))
    }
}

#[async_trait::async_trait]
impl ReadsInPlace for CounterConfig {
    async fn look(&self) -> Result<Look, String> {
        let n = self.read()?;
        Ok(Look {
            data_version: format!("n={n}"),
            metadata: serde_json::json!({ "n": n }),
            seen: Box::new(n),
        })
    }

    async fn table(
        &self,
        _ctx: &SessionContext,
        look: &Look,
    ) -> Result<Arc<dyn TableProvider>, String> {
        Ok(table(*look.seen.downcast_ref::<i64>().ok_or("not ours")?))
    }

    async fn recorded(
        &self,
        _ctx: &SessionContext,
        metadata: &serde_json::Value,
        _data_version: &str,
    ) -> Result<Arc<dyn TableProvider>, String> {
        let recorded = metadata["n"].as_i64().ok_or("no n recorded")?;
        match self.read()? {
            n if n == recorded => Ok(table(n)),
            n => Err(format!("the file holds {n}, not the observed {recorded}")),
        }
    }
}

impl AssetKind for CounterKind {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        let mut c: CounterConfig = def.parse()?;
        c.file = def.dir.join(&c.file);
        let version = format!("counter:{}", c.file.display());
        Ok(KindConfig::new(AssetBody::Kind(Arc::new(c)), version))
    }

    fn reads_in_place<'a>(&self, body: &'a AssetBody) -> Option<&'a dyn ReadsInPlace> {
        body.config::<CounterConfig>()
            .map(|c| c as &dyn ReadsInPlace)
    }

    fn execute<'a>(
        &'a self,
        _ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async {
            Err(StepError::permanent(
                "a counter is observed, never computed",
            ))
        })
    }
}

fn kinds() -> KindRegistry {
    let mut k = KindRegistry::builtin();
    k.register(Arc::new(CounterKind));
    k
}

/// Materializes everything; each step's status.
async fn run(e: &Engine) -> Vec<StepStatus> {
    let report = e.materialize(MaterializeRequest::default()).await.unwrap();
    report.steps.iter().map(|s| s.status).collect()
}

async fn doubled(e: &Engine) -> serde_json::Value {
    let batches = spine_engine::query::run_sql(e, "SELECT d FROM doubled")
        .await
        .unwrap();
    let mut w = arrow::json::ArrayWriter::new(Vec::new());
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    serde_json::from_slice(&w.into_inner()).unwrap()
}

#[tokio::test]
async fn a_kind_defined_outside_the_engine_is_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("spine.toml"), "[project]\nname = \"c\"\n").unwrap();
    std::fs::write(root.join("assets/n.txt"), "21\n").unwrap();
    std::fs::write(
        root.join("assets/n.yaml"),
        "key: raw/n\nkind: counter\nfile: n.txt\n",
    )
    .unwrap();
    std::fs::write(
        root.join("assets/doubled.yaml"),
        "key: doubled\nkind: sql\nquery: SELECT n * 2 AS d FROM raw.n\n",
    )
    .unwrap();
    let e = Engine::load(root, kinds()).await.unwrap();
    assert!(e.project().assets.values().any(|a| a.read_in_place()));
    assert_eq!(
        run(&e).await,
        [StepStatus::Succeeded, StepStatus::Succeeded]
    );
    assert_eq!(doubled(&e).await, serde_json::json!([{"d": 42}]));
    assert!(!root.join("warehouse/raw/n").exists(), "nothing copied");
    let m = e
        .store()
        .latest_materialization(&spine_engine::StepKey::whole(
            spine_engine::AssetKey::parse("raw/n").unwrap(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.m.delta_version, m.m.data_version.as_str()), (-1, "n=21"));
    assert_eq!(m.m.metadata, serde_json::json!({"n": 21}));

    // Unchanged: the observation is not recorded again, and doubled is up to date.
    assert_eq!(run(&e).await, [StepStatus::UpToDate, StepStatus::UpToDate]);

    // Changed: observed again, doubled recomputed from the new observation.
    std::fs::write(root.join("assets/n.txt"), "50\n").unwrap();
    assert_eq!(
        run(&e).await,
        [StepStatus::Succeeded, StepStatus::Succeeded]
    );
    assert_eq!(doubled(&e).await, serde_json::json!([{"d": 100}]));

    // Changed behind the engine's back, read without observing: refused, naming why.
    std::fs::write(root.join("assets/n.txt"), "7\n").unwrap();
    let report = e
        .materialize(MaterializeRequest {
            selection: Some("doubled".into()),
            force: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let step = report
        .steps
        .iter()
        .find(|s| s.key.as_str() == "doubled")
        .unwrap();
    assert_eq!(step.status, StepStatus::Failed, "{report:?}");
    assert!(
        step.error
            .as_deref()
            .unwrap_or_default()
            .contains("not the observed 50"),
        "{step:?}"
    );
}
