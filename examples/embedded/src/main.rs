//! Embedding Spine: define assets in Rust (a `rust` asset returning Arrow batches and a `sql` asset over
//! it), materialize them durably, run again (everything fresh), and query the result. Then register a
//! custom kind (`random_walk`, in `walk.rs`) with one call and use it from a YAML project with its own
//! fields.
//!
//! Run: `cargo run -p spine-example-embedded -- [DIR]` (default: a temporary folder).

mod walk;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use spine_engine::kinds::KindRegistry;
use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::store::StepStatus;
use spine_engine::{Engine, MaterializeRequest};
use std::sync::Arc;

/// Sensor readings, as a Rust function would fetch them from an API or a device.
async fn readings() -> Result<Vec<RecordBatch>, spine_engine::project::BoxError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sensor", DataType::Utf8, false),
        Field::new("minute", DataType::Int64, false),
        Field::new("celsius", DataType::Float64, false),
    ]));
    let n = 6_000;
    let sensor: StringArray = (0..n).map(|i| Some(format!("s{}", i % 6))).collect();
    let minute = Int64Array::from_iter_values((0..n).map(|i| i / 6));
    let celsius =
        Float64Array::from_iter_values((0..n).map(|i| 18.0 + ((i * 37) % 100) as f64 / 10.0));
    Ok(vec![RecordBatch::try_new(
        schema,
        vec![Arc::new(sensor), Arc::new(minute), Arc::new(celsius)],
    )?])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("spine-embedded-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let config = ProjectConfig::in_dir(&dir)?;
    let project = Project::builder(config)
        .asset(AssetSpec::rust("iot/readings", &[], "v1", |_ctx| {
            readings()
        })?)
        .asset(AssetSpec::sql(
            "iot/hourly",
            "SELECT sensor, minute / 60 AS hour, AVG(celsius) AS avg_c, MAX(celsius) AS max_c
             FROM iot.readings GROUP BY sensor, minute / 60",
        )?)
        .build()?;
    let engine = Engine::open(project, KindRegistry::builtin()).await?;

    let first = engine.materialize(MaterializeRequest::default()).await?;
    for s in &first.steps {
        println!(
            "{:<14} {:<10} rows={:?} delta_version={:?}",
            s.key, s.status, s.rows, s.delta_version
        );
    }
    let second = engine.materialize(MaterializeRequest::default()).await?;
    println!(
        "second run: {} of {} steps up to date",
        second.count(StepStatus::UpToDate),
        second.steps.len()
    );

    let batches = spine_engine::query::run_sql(&engine, "SELECT sensor, ROUND(AVG(avg_c), 2) AS avg_c FROM iot.hourly GROUP BY sensor ORDER BY sensor").await?;
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
    anyhow::ensure!(
        second.count(StepStatus::UpToDate) == 2,
        "expected both assets to be fresh on the second run"
    );
    println!(
        "state: {}  warehouse: {}",
        engine.project().config.state_url,
        engine.project().config.warehouse_url
    );

    // A YAML project using a kind this program registers: its fields (`steps`, `seed`) are its own.
    let yaml = dir.join("yaml-project");
    std::fs::create_dir_all(yaml.join("assets"))?;
    std::fs::write(yaml.join("spine.toml"), "[project]\nname = \"walks\"\n")?;
    std::fs::write(
        yaml.join("assets/walk.yaml"),
        "key: sim/walk\nkind: random_walk\nsteps: 500\nseed: 42\n",
    )?;
    std::fs::write(
        yaml.join("assets/summary.yaml"),
        "key: sim/summary\nkind: sql\nquery: SELECT MIN(position) AS low, MAX(position) AS high FROM sim.walk\n",
    )?;
    let mut kinds = KindRegistry::builtin();
    kinds.register(Arc::new(walk::RandomWalk));
    let walks = Engine::load(&yaml, kinds).await?;
    let run = walks.materialize(MaterializeRequest::default()).await?;
    anyhow::ensure!(
        run.count(StepStatus::Succeeded) == 2,
        "the custom kind and its downstream ran: {run:?}"
    );
    let summary = spine_engine::query::run_sql(&walks, "SELECT low, high FROM sim.summary").await?;
    println!("{}", arrow::util::pretty::pretty_format_batches(&summary)?);
    Ok(())
}
