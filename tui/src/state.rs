//! The UI's state types that several modules share — the lineage index and position, an action
//! waiting for an answer, an opened backfill — kept apart from the modules that draw them and handle
//! their keys, so `app` and those modules do not import each other (no cycle between modules).

use spine_engine::{Engine, EngineError};
use std::collections::HashMap;

/// The graph's index, rebuilt with each snapshot: where each asset is, and who reads it.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(crate) index: HashMap<String, usize>,
    pub(crate) down: HashMap<String, Vec<String>>,
}

impl Graph {
    /// The index of `snapshot`'s assets.
    pub fn of(snapshot: &crate::model::Snapshot) -> Self {
        let mut g = Graph::default();
        for (i, a) in snapshot.assets.iter().enumerate() {
            g.index.insert(a.key.clone(), i);
            for d in &a.deps {
                g.down.entry(d.clone()).or_default().push(a.key.clone());
            }
        }
        g
    }
}

impl Graph {
    /// The assets that read `key` directly.
    pub fn readers(&self, key: &str) -> &[String] {
        self.down.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Where the Lineage view is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineageState {
    /// The asset in the middle (`None`: the Assets tab's selection).
    pub center: Option<String>,
    /// Layers each way (1–6).
    pub depth: usize,
    /// The selected layer, relative to the center (negative: upstream).
    pub layer: i32,
    /// The selected asset within it.
    pub row: usize,
}

impl Default for LineageState {
    fn default() -> Self {
        LineageState {
            center: None,
            depth: 2,
            layer: 0,
            row: 0,
        }
    }
}

/// An action waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Materialize `key`; `downstream` assets read it (directly or not).
    Materialize {
        /// The asset.
        key: String,
        /// How many assets are downstream of it.
        downstream: usize,
    },
    /// Re-run `run` from its failure.
    Rerun {
        /// The run id.
        run: String,
        /// Its status.
        status: String,
    },
    /// Cancel `run`.
    Cancel {
        /// The run id.
        run: String,
        /// Its status.
        status: String,
    },
    /// Cancel backfill `id`.
    CancelBackfill {
        /// The backfill id.
        id: String,
        /// Its state.
        state: String,
    },
}

impl Confirm {
    /// The question, and its answers as (key, meaning).
    pub fn question(&self) -> (String, Vec<(&'static str, String)>) {
        match self {
            Confirm::Materialize { key, downstream } => {
                let mut answers = vec![("y", format!("materialize {key}"))];
                if *downstream > 0 {
                    answers.push(("d", format!("{key} and its {downstream} downstream")));
                }
                answers.push(("n", "no".into()));
                (
                    format!("Materialize {key}? It is recomputed even if fresh."),
                    answers,
                )
            }
            Confirm::Rerun { run, status } => (
                format!(
                    "Re-run run {} ({status}) from its failure? A new run executes its failed, \
                     skipped and cancelled steps.",
                    short(run)
                ),
                vec![("y", "re-run".into()), ("n", "no".into())],
            ),
            Confirm::CancelBackfill { id, state } => (
                format!(
                    "Cancel backfill {} ({state})? Its queued runs are cancelled and a running one \
                     stops before its next commit; `assets backfill resume` continues it.",
                    short(id)
                ),
                vec![("y", "cancel the backfill".into()), ("n", "no".into())],
            ),
            Confirm::Cancel { run, status } => (
                format!(
                    "Cancel run {} ({status})? Steps that have not committed stop.",
                    short(run)
                ),
                vec![("y", "cancel the run".into()), ("n", "no".into())],
            ),
        }
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// One chunk of a backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    /// Its number.
    pub chunk: i64,
    /// Its latest run.
    pub run_id: String,
    /// That run's state.
    pub run_status: String,
    /// Runs it took.
    pub runs: i64,
    /// Step keys: in it, done, failed, skipped.
    pub steps: (usize, usize, usize, usize),
    /// Its first and last partition.
    pub range: String,
}

/// A backfill's detail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillDetail {
    /// Id.
    pub id: String,
    /// State.
    pub state: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Its chunks in order.
    pub chunks: Vec<ChunkRow>,
    /// Failed step keys (up to ten) with their errors.
    pub failures: Vec<(String, String)>,
}

impl BackfillDetail {
    /// Reads backfill `id` (a unique prefix) from the store.
    pub async fn load(engine: &Engine, id: &str) -> Result<Self, EngineError> {
        let b = engine.backfill_status(id).await?;
        Ok(BackfillDetail {
            id: b.record.backfill_id.as_str().to_string(),
            state: b.state.as_str().to_string(),
            created_at: b.record.created_at.clone(),
            chunks: b
                .chunks
                .iter()
                .map(|c| ChunkRow {
                    chunk: c.chunk,
                    run_id: c.run_id.as_str().to_string(),
                    run_status: c.run_status.as_str().to_string(),
                    runs: c.runs,
                    steps: (c.steps, c.done, c.failed, c.skipped),
                    range: match (&c.first, &c.last) {
                        (Some(a), Some(b)) if a != b => format!("{a}..{b}"),
                        (Some(a), _) => a.clone(),
                        _ => "-".into(),
                    },
                })
                .collect(),
            failures: b.failures.clone(),
        })
    }
}
