//! Backfills: a durable, resumable request to materialize a range of partitions, chunked into runs.
//!
//! [`Instance::create_backfill`] plans every step key the request covers (the selected assets' partitions
//! in the range, optionally only the missing or failed ones), cuts them into chunks of `per_run`
//! partitions and records the backfill with one queued run per chunk, in one store transaction: after a
//! crash there is either no backfill or a whole one. A chunk holds `per_run` partitions of the assets
//! that start the backfill, and every step that reads them goes with the latest chunk it reads from (a
//! day's total with its day, a week with its last day, a rollup of all days last), so running the
//! chunks in order runs every step after what it reads.
//!
//! [`Instance::run_backfill`] (in `drive`) executes the queued runs in chunk order; [`Instance::resume_backfill`]
//! first settles interrupted runs (their committed steps are recorded from the Delta log, never redone)
//! and adds, for each chunk whose run ended without finishing, one run of exactly the steps the chunk
//! has not committed. Progress is read from the runs' steps ([`Instance::backfill_status`]).

mod drive;
mod status;

pub use status::{BackfillState, BackfillStatus, ChunkStatus};

use crate::error::{DefinitionError, EngineError};
use crate::instance::Instance;
use crate::key::{AssetKey, BackfillId, PartitionKey, StepKey};
use crate::partitions::PartitionSelection;
use crate::store::{BackfillRecord, PlannedRun, StepStatus};
use crate::upstream::upstreams;
use std::collections::HashMap;

/// Which of the covered partitions a backfill takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BackfillFilter {
    /// All of them (materialized again even when fresh).
    #[default]
    All,
    /// Only those never materialized.
    Missing,
    /// Only those whose latest step failed (or was skipped because its upstream failed).
    Failed,
}

impl BackfillFilter {
    fn stored(self) -> Option<String> {
        match self {
            BackfillFilter::All => None,
            BackfillFilter::Missing => Some("missing".into()),
            BackfillFilter::Failed => Some("failed".into()),
        }
    }
}

/// What to backfill.
#[derive(Debug, Clone, Default)]
pub struct BackfillRequest {
    /// Selection expression; `None` = every asset.
    pub selection: Option<String>,
    /// The partitions (`--from/--to`, `--partitions`; default all that exist).
    pub partitions: PartitionSelection,
    /// Only missing or failed partitions.
    pub filter: BackfillFilter,
    /// Partitions per run (`None`: all in one run).
    pub per_run: Option<usize>,
    /// Steps at once within a run (`None`: the project's setting).
    pub concurrency: Option<usize>,
}

impl PartitionSelection {
    /// The selection as a backfill records it.
    fn describe(&self) -> String {
        match self {
            PartitionSelection::All => "all".into(),
            PartitionSelection::Keys(k) => k
                .iter()
                .map(PartitionKey::as_str)
                .collect::<Vec<_>>()
                .join(","),
            PartitionSelection::Range(a, b) => format!("{a}..{b}"),
            PartitionSelection::Latest => "latest".into(),
        }
    }
}

/// Cuts `steps` (in plan order) into chunks. A step that reads upstream steps among `steps` goes to the
/// latest of their chunks (a day's total with its day, a week with its last day, a rollup last);
/// any other step goes to its partition's position among the distinct partitions divided by
/// `per_run` (an unpartitioned one to the first). So every step runs in or after the chunk of what it
/// reads. Empty chunks are dropped.
pub(crate) fn chunk_steps(
    project: &crate::project::Project,
    steps: &[StepKey],
    per_run: usize,
) -> Vec<Vec<StepKey>> {
    let per_run = per_run.max(1);
    let mut position: HashMap<&PartitionKey, usize> = HashMap::new();
    for p in steps.iter().filter_map(|s| s.partition.as_ref()) {
        let n = position.len();
        position.entry(p).or_insert(n);
    }
    let mut chunk_of: HashMap<&StepKey, usize> = HashMap::new();
    // The latest chunk of any step of an asset (for upstreams read whole).
    let mut latest_of: HashMap<&AssetKey, usize> = HashMap::new();
    for s in steps {
        let spec = &project.assets[&s.asset];
        let after = upstreams(project, spec, s)
            .iter()
            .filter_map(|u| match u.steps() {
                Some(ups) => ups.iter().filter_map(|k| chunk_of.get(k).copied()).max(),
                None => latest_of.get(u.asset()).copied(),
            })
            .max();
        let c = after.unwrap_or_else(|| s.partition.as_ref().map_or(0, |p| position[p] / per_run));
        chunk_of.insert(s, c);
        let l = latest_of.entry(&s.asset).or_insert(c);
        *l = (*l).max(c);
    }
    let n = chunk_of.values().copied().max().map_or(0, |m| m + 1);
    let mut chunks = vec![Vec::new(); n];
    for s in steps {
        chunks[chunk_of[s]].push(s.clone());
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

impl Instance {
    /// Plans and records a backfill (see the module docs) and returns its id, or `None` when the
    /// request covers no step (nothing is missing or failed). Nothing runs yet.
    pub async fn create_backfill(
        &self,
        req: &BackfillRequest,
    ) -> Result<Option<BackfillId>, EngineError> {
        let selected = crate::plan::select_some(&self.project, req.selection.as_deref())?;
        if !selected
            .iter()
            .any(|k| self.project.assets[k].partitions.is_some())
        {
            return Err(DefinitionError::new(
                "E0414",
                format!(
                    "the selection '{}' has no partitioned asset to backfill",
                    req.selection.as_deref().unwrap_or("*")
                ),
            )
            .hint("select a partitioned asset (`assets list` shows partitions), or use `assets materialize`")
            .into());
        }
        if req.per_run == Some(0) {
            return Err(
                DefinitionError::new("E0414", "--per-run must be at least 1")
                    .hint("--per-run 1 runs each partition on its own; leave it out for one run")
                    .into(),
            );
        }
        let mut steps = crate::plan::steps_in_order(
            &self.project,
            &selected,
            &req.partitions,
            self.clock.now(),
        )?;
        match req.filter {
            BackfillFilter::All => {}
            BackfillFilter::Missing => {
                let latest = self.store.latest_materializations().await?;
                steps.retain(|s| !latest.contains_key(s));
            }
            BackfillFilter::Failed => {
                let outcomes = self.store.latest_step_outcomes(None).await?;
                steps.retain(|s| {
                    outcomes.get(s).is_some_and(|o| {
                        matches!(o.status, StepStatus::Failed | StepStatus::Skipped)
                    })
                });
            }
        }
        if steps.is_empty() {
            return Ok(None);
        }
        let distinct = steps
            .iter()
            .filter_map(|s| s.partition.as_ref())
            .collect::<std::collections::HashSet<_>>()
            .len()
            .max(1);
        let per_run = req.per_run.unwrap_or(distinct).min(distinct);
        let chunks = chunk_steps(&self.project, &steps, per_run);
        let id = BackfillId::new();
        let by = format!("backfill:{id}");
        let runs: Vec<PlannedRun> = chunks
            .iter()
            .map(|c| self.planned_run_by(req.selection.as_deref(), true, c, &by))
            .collect();
        let record = BackfillRecord {
            backfill_id: id.clone(),
            selection: req.selection.clone(),
            partitions: req.partitions.describe(),
            filter: req.filter.stored(),
            per_run: per_run as i64,
            concurrency: req.concurrency.map(|c| c as i64),
            steps: steps.len() as i64,
            created_at: self.clock.stamp(),
            cancelled_at: None,
        };
        self.store.create_backfill(&record, &runs).await?;
        Ok(Some(id))
    }
}
