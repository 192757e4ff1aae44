//! A custom asset kind, `random_walk`, with its own YAML fields, registered with one call:
//!
//! ```yaml
//! key: sim/walk
//! kind: random_walk
//! steps: 1000      # required, at least 1
//! seed: 7          # optional (default 1)
//! ```
//!
//! It owns its configuration (parsed and validated in `configure`, unknown fields rejected with the
//! loader's error codes) and computes deterministic rows `(step, position)` in `execute`.

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use futures::future::BoxFuture;
use spine_engine::error::DefinitionError;
use spine_engine::kinds::{
    AssetKind, KindConfig, KindDefinition, StepContext, StepData, StepError, StepOutput,
};
use spine_engine::project::AssetBody;
use std::sync::Arc;

/// The kind.
pub struct RandomWalk;

/// Its fields.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkConfig {
    /// How many steps to take.
    pub steps: u32,
    /// Seed of the generator.
    #[serde(default = "one")]
    pub seed: u64,
}

fn one() -> u64 {
    1
}

impl AssetKind for RandomWalk {
    fn name(&self) -> &'static str {
        "random_walk"
    }

    fn configure(&self, def: &KindDefinition<'_>) -> Result<KindConfig, DefinitionError> {
        let config: WalkConfig = def.parse()?;
        if config.steps == 0 {
            return Err(def.error("E0206", "random_walk: `steps` must be at least 1"));
        }
        // The code version changes exactly when the output would.
        let version = format!("walk-{}-{}", config.steps, config.seed);
        Ok(KindConfig::new(AssetBody::Kind(Arc::new(config)), version))
    }

    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<StepOutput, StepError>> {
        Box::pin(async move {
            let config = ctx
                .spec
                .body
                .config::<WalkConfig>()
                .ok_or_else(|| StepError::permanent("random_walk: no configuration"))?;
            let mut state = config.seed;
            let mut position = 0i64;
            let positions: Vec<i64> = (0..config.steps)
                .map(|_| {
                    // xorshift64: deterministic, no dependency.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    position += if state & 1 == 0 { 1 } else { -1 };
                    position
                })
                .collect();
            let schema = Arc::new(Schema::new(vec![
                Field::new("step", DataType::Int64, false),
                Field::new("position", DataType::Int64, false),
            ]));
            let batch = RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(Int64Array::from_iter_values(1..=config.steps as i64)),
                    Arc::new(Int64Array::from(positions)),
                ],
            )
            .map_err(StepError::permanent)?;
            Ok(StepOutput::data(StepData::Batches(vec![batch])))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spine_engine::kinds::KindRegistry;
    use spine_engine::store::StepStatus;
    use spine_engine::{Engine, MaterializeRequest};

    fn project(dir: &std::path::Path, walk: &str) {
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("spine.toml"), "[project]\nname = \"walk\"\n").unwrap();
        std::fs::write(dir.join("assets/walk.yaml"), walk).unwrap();
        std::fs::write(
            dir.join("assets/stats.yaml"),
            "key: sim/stats\nkind: sql\nquery: SELECT COUNT(*) AS n, MAX(step) AS last FROM sim.walk\n",
        )
        .unwrap();
    }

    fn kinds() -> KindRegistry {
        let mut kinds = KindRegistry::builtin();
        kinds.register(Arc::new(RandomWalk));
        kinds
    }

    #[tokio::test]
    async fn a_registered_kind_is_defined_in_yaml_with_its_own_fields() {
        let dir = tempfile::tempdir().unwrap();
        project(
            dir.path(),
            "key: sim/walk\nkind: random_walk\nsteps: 250\nseed: 7\ntags: [sim]\n",
        );
        let engine = Engine::load(dir.path(), kinds()).await.unwrap();
        let spec = &engine.project().assets[&spine_engine::AssetKey::parse("sim/walk").unwrap()];
        assert_eq!(spec.code_version, "walk-250-7");
        assert_eq!(spec.tags, ["sim"], "common fields stay the loader's");
        let report = engine
            .materialize(MaterializeRequest::default())
            .await
            .unwrap();
        assert_eq!(report.count(StepStatus::Succeeded), 2, "{report:?}");
        let rows = spine_engine::query::run_sql(&engine, "SELECT n, last FROM sim.stats")
            .await
            .unwrap();
        let col = |i: usize| {
            rows[0]
                .column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0)
        };
        assert_eq!((col(0), col(1)), (250, 250));
    }

    #[tokio::test]
    async fn its_fields_are_validated_by_the_kind() {
        for (yaml, code, text) in [
            (
                "key: sim/walk\nkind: random_walk\nstepz: 5\n",
                "E0107",
                "did you mean `steps`?",
            ),
            (
                "key: sim/walk\nkind: random_walk\nsteps: 0\n",
                "E0206",
                "at least 1",
            ),
            (
                "key: sim/walk\nkind: random_walk\n",
                "E0206",
                "missing field `steps`",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            project(dir.path(), yaml);
            let err = match Engine::load(dir.path(), kinds()).await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{yaml} must be rejected"),
            };
            assert!(err.contains(code) && err.contains(text), "{yaml}: {err}");
            assert!(err.contains("assets/walk.yaml"), "{err}");
        }
        // Without the registration the kind is unknown.
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), "key: sim/walk\nkind: random_walk\nsteps: 5\n");
        let err = match Engine::load(dir.path(), KindRegistry::builtin()).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("unknown kind accepted"),
        };
        assert!(err.contains("E0205"), "{err}");
    }
}
