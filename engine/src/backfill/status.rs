//! A backfill's progress, read from the steps of its runs: a step key is done once any run of its chunk
//! materialized it (or found it up to date); otherwise its latest attempt says whether it failed or is
//! still to do. The backfill's state follows from its chunks' latest runs.

use crate::error::EngineError;
use crate::instance::Instance;
use crate::key::{RunId, StepKey};
use crate::store::{BackfillRecord, RunRecord, RunStatus, StepStatus};
use std::collections::{BTreeMap, HashMap};

/// Where a backfill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Runs are queued and none is running: not started, or stopped between runs (resume it).
    Queued,
    /// A run of it is executing.
    Running,
    /// A run of it was executing in a process that is gone (resume settles and continues it).
    Interrupted,
    /// Every step key is materialized.
    Succeeded,
    /// Its runs have ended and some steps failed (resume retries what is not committed).
    Failed,
    /// Cancelled (resume continues it).
    Cancelled,
    /// A run waits for a signal to a parked step.
    Waiting,
}

impl BackfillState {
    /// The name printed and stored in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Queued => "queued",
            BackfillState::Running => "running",
            BackfillState::Interrupted => "interrupted",
            BackfillState::Succeeded => "succeeded",
            BackfillState::Failed => "failed",
            BackfillState::Cancelled => "cancelled",
            BackfillState::Waiting => "waiting",
        }
    }
}

impl std::fmt::Display for BackfillState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chunk of a backfill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChunkStatus {
    /// Its number (the order it runs in).
    pub chunk: i64,
    /// Its latest run.
    pub run_id: RunId,
    /// That run's state.
    pub run_status: RunStatus,
    /// How many runs it took so far.
    pub runs: i64,
    /// Step keys in it.
    pub steps: usize,
    /// Of those, materialized.
    pub done: usize,
    /// Of those, failed in their latest attempt.
    pub failed: usize,
    /// Of those, skipped in their latest attempt (an upstream they read did not succeed).
    pub skipped: usize,
    /// First partition key in it (for display).
    pub first: Option<String>,
    /// Last partition key in it.
    pub last: Option<String>,
}

/// A backfill with its progress.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillStatus {
    /// As recorded.
    #[serde(flatten)]
    pub record: BackfillRecord,
    /// Where it stands.
    pub state: BackfillState,
    /// Step keys materialized.
    pub done: usize,
    /// Step keys whose latest attempt failed.
    pub failed: usize,
    /// Step keys whose latest attempt was skipped (an upstream they read did not succeed).
    pub skipped: usize,
    /// Step keys not yet materialized (failed ones included).
    pub remaining: usize,
    /// Its chunks in order.
    pub chunks: Vec<ChunkStatus>,
    /// Up to ten failed step keys with their errors.
    pub failures: Vec<(String, String)>,
}

/// What [`Instance::backfill_status`] knows of each step key of a chunk.
#[derive(Default)]
pub(super) struct ChunkSteps {
    /// Step keys in plan order, each with (done, latest status, latest error).
    pub steps: Vec<(StepKey, bool, StepStatus, Option<String>)>,
    /// The chunk's runs, by attempt.
    pub runs: Vec<RunRecord>,
}

impl Instance {
    /// Every chunk's step keys and runs, from the store.
    pub(super) async fn chunk_steps_of(
        &self,
        record: &BackfillRecord,
    ) -> Result<BTreeMap<i64, ChunkSteps>, EngineError> {
        let mut chunks: BTreeMap<i64, ChunkSteps> = BTreeMap::new();
        let mut index: HashMap<(i64, StepKey), usize> = HashMap::new();
        for s in self.store.backfill_steps(&record.backfill_id).await? {
            let c = chunks.entry(s.chunk).or_default();
            let done = matches!(s.status, StepStatus::Succeeded | StepStatus::UpToDate);
            match index.get(&(s.chunk, s.step.clone())) {
                Some(&i) => {
                    let e = &mut c.steps[i];
                    e.1 |= done;
                    e.2 = s.status;
                    e.3 = s.error;
                }
                None => {
                    index.insert((s.chunk, s.step.clone()), c.steps.len());
                    c.steps.push((s.step, done, s.status, s.error));
                }
            }
        }
        for (chunk, _, run) in self.store.backfill_runs(&record.backfill_id).await? {
            chunks.entry(chunk).or_default().runs.push(run);
        }
        Ok(chunks)
    }

    /// A backfill (by id or unique prefix) with its progress.
    pub async fn backfill_status(&self, id: &str) -> Result<BackfillStatus, EngineError> {
        let record = self.store.get_backfill(id).await?;
        let chunks = self.chunk_steps_of(&record).await?;
        let now = self.clock.now_ms();
        let mut out = BackfillStatus {
            state: BackfillState::Queued,
            done: 0,
            failed: 0,
            skipped: 0,
            remaining: 0,
            chunks: Vec::new(),
            failures: Vec::new(),
            record,
        };
        let mut runs_in = Vec::new();
        for (chunk, c) in &chunks {
            let Some(latest) = c.runs.last() else {
                continue;
            };
            let done = c.steps.iter().filter(|s| s.1).count();
            let failed: Vec<_> = c
                .steps
                .iter()
                .filter(|s| !s.1 && s.2 == StepStatus::Failed)
                .collect();
            let skipped = c
                .steps
                .iter()
                .filter(|s| !s.1 && s.2 == StepStatus::Skipped)
                .count();
            for s in failed.iter().take(10 - out.failures.len().min(10)) {
                out.failures
                    .push((s.0.to_string(), s.3.clone().unwrap_or_default()));
            }
            let parts: Vec<&str> = c
                .steps
                .iter()
                .filter_map(|s| s.0.partition.as_ref().map(|p| p.as_str()))
                .collect();
            out.done += done;
            out.failed += failed.len();
            out.skipped += skipped;
            out.remaining += c.steps.len() - done;
            runs_in.push((latest.clone(), done == c.steps.len()));
            out.chunks.push(ChunkStatus {
                chunk: *chunk,
                run_id: latest.run_id.clone(),
                run_status: latest.status,
                runs: c.runs.len() as i64,
                steps: c.steps.len(),
                done,
                failed: failed.len(),
                skipped,
                first: parts.iter().min().map(|s| s.to_string()),
                last: parts.iter().max().map(|s| s.to_string()),
            });
        }
        out.state = state_of(&runs_in, out.record.cancelled_at.is_some(), now);
        Ok(out)
    }

    /// The most recent backfills, with their progress.
    pub async fn backfills(&self, limit: i64) -> Result<Vec<BackfillStatus>, EngineError> {
        let mut out = Vec::new();
        for b in self.store.list_backfills(limit).await? {
            out.push(self.backfill_status(b.backfill_id.as_str()).await?);
        }
        Ok(out)
    }
}

/// The state that follows from each chunk's latest run (and whether the chunk is all done).
fn state_of(chunks: &[(RunRecord, bool)], cancel_asked: bool, now_ms: i64) -> BackfillState {
    let any = |f: &dyn Fn(&RunRecord, bool) -> bool| chunks.iter().any(|(r, d)| f(r, *d));
    if any(&|r, _| r.status == RunStatus::Running && !crate::recovery::is_interrupted(r, now_ms)) {
        return BackfillState::Running;
    }
    if any(&|r, _| r.status == RunStatus::Running) {
        return BackfillState::Interrupted;
    }
    if chunks.iter().all(|(_, done)| *done) {
        return BackfillState::Succeeded;
    }
    if cancel_asked {
        return BackfillState::Cancelled;
    }
    if any(&|r, d| r.status == RunStatus::Queued && !d) {
        return BackfillState::Queued;
    }
    if any(&|r, d| r.status == RunStatus::Failed && !d) {
        return BackfillState::Failed;
    }
    if any(&|r, d| r.status == RunStatus::Cancelled && !d) {
        return BackfillState::Cancelled;
    }
    if any(&|r, _| r.status == RunStatus::Waiting) {
        return BackfillState::Waiting;
    }
    BackfillState::Failed
}
