//! What the UI shows, as plain data: a [`Snapshot`] of the catalog and recent runs, and a
//! [`RunDetail`] of one run. [`load`] and [`RunDetail::load`] read them from an [`Engine`]; tests build
//! them by hand, so rendering needs neither a terminal nor a store.

use spine_engine::store::StepStatus;
use spine_engine::{AssetKey, Engine, EngineError, Freshness, RunId, StepKey};
use std::collections::HashMap;

/// One asset of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRow {
    /// Key.
    pub key: String,
    /// Kind (`sql`, `command`, `source`, …).
    pub kind: String,
    /// Group.
    pub group: String,
    /// `fresh`, `stale`, `missing`, `failed` (its latest step failed) or `upstream-stale`.
    pub state: String,
    /// Why it is stale, when it is.
    pub reason: Option<String>,
    /// When its latest materialization was recorded (RFC 3339).
    pub last: Option<String>,
    /// Rows of the latest materialization.
    pub rows: Option<i64>,
    /// For a partitioned asset: `fresh/total`.
    pub partitions: Option<String>,
    /// Upstream asset keys.
    pub deps: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Owners.
    pub owners: Vec<String>,
    /// Code version.
    pub code_version: String,
}

/// One recent run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// Full id.
    pub id: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled`, `waiting`.
    pub status: String,
    /// Selection it was asked for.
    pub selection: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Started.
    pub started_at: Option<String>,
    /// Ended.
    pub finished_at: Option<String>,
    /// For a queued, running or parked run: (steps that ended, steps).
    pub progress: Option<(usize, usize)>,
}

/// One backfill with its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRow {
    /// Id.
    pub id: String,
    /// Its selection (`*`: every asset).
    pub selection: String,
    /// The partitions asked for (`FROM..TO`, keys, `all`).
    pub partitions: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled`, …
    pub state: String,
    /// Step keys committed.
    pub done: usize,
    /// Step keys whose latest attempt failed.
    pub failed: usize,
    /// Step keys it covers.
    pub total: usize,
    /// Runs (chunks) it has.
    pub runs: usize,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// One schedule with its ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// Name.
    pub name: String,
    /// Cron expression and timezone.
    pub cron: String,
    /// Its selection (`*`: every asset).
    pub selection: String,
    /// The next tick (RFC 3339 on the schedule's own clock, with its offset), if the cron has one.
    pub next: Option<String>,
    /// The latest recorded tick (on the schedule's own clock).
    pub last: Option<String>,
}

/// The catalog and the recent runs, backfills and schedules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Project name.
    pub project: String,
    /// Every asset, in topological order.
    pub assets: Vec<AssetRow>,
    /// Recent runs, newest first.
    pub runs: Vec<RunRow>,
    /// Recent backfills, newest first.
    pub backfills: Vec<BackfillRow>,
    /// The project's schedules.
    pub schedules: Vec<ScheduleRow>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    /// Step id (`asset` or `asset[partition]`).
    pub step_id: String,
    /// State.
    pub status: String,
    /// Attempts started.
    pub attempt: i64,
    /// First start (RFC 3339).
    pub started_at: Option<String>,
    /// End.
    pub finished_at: Option<String>,
    /// Error of the last failed attempt, or why it was skipped.
    pub message: Option<String>,
}

/// One line of a run's event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Event id (increasing).
    pub id: i64,
    /// Timestamp (RFC 3339).
    pub ts: String,
    /// Its step, if any.
    pub step: Option<String>,
    /// The message.
    pub message: String,
}

/// A run opened in the Runs view: its steps and its log so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDetail {
    /// The run.
    pub run: Option<RunRow>,
    /// Its steps in plan order.
    pub steps: Vec<StepRow>,
    /// Its events so far, oldest first.
    pub log: Vec<LogLine>,
}

pub(crate) fn run_row(r: &spine_engine::store::RunRecord) -> RunRow {
    RunRow {
        id: r.run_id.as_str().to_string(),
        status: r.status.as_str().to_string(),
        selection: r.selection.clone(),
        created_at: r.created_at.clone(),
        started_at: r.started_at.clone(),
        finished_at: r.finished_at.clone(),
        progress: None,
    }
}

/// The latest `limit` runs, newest first, with the progress of the active ones (one query for all
/// of them; ended runs are not counted, so a long history costs nothing per poll).
pub async fn runs(engine: &Engine, limit: i64) -> Result<Vec<RunRow>, EngineError> {
    let records = engine.reader().list_runs(limit).await?;
    let active: Vec<RunId> = records
        .iter()
        .filter(|r| !r.status.is_terminal())
        .map(|r| r.run_id.clone())
        .collect();
    let progress = if active.is_empty() {
        HashMap::new()
    } else {
        engine.reader().run_progress(&active).await?
    };
    Ok(records
        .iter()
        .map(|r| RunRow {
            progress: progress.get(&r.run_id).copied(),
            ..run_row(r)
        })
        .collect())
}

/// The catalog as the project defines it, before the store is read (every state `…`): what the
/// first frame shows while [`load`] works out freshness.
pub fn skeleton(engine: &Engine) -> Snapshot {
    let project = engine.project();
    let order = project.graph.topological_order().unwrap_or_default();
    Snapshot {
        project: project.config.name.clone(),
        assets: order
            .into_iter()
            .filter_map(|k| project.assets.get(k))
            .map(|spec| AssetRow {
                key: spec.key.to_string(),
                kind: spec.kind.clone(),
                group: spec.group.clone(),
                state: "…".into(),
                reason: None,
                last: None,
                rows: None,
                partitions: None,
                deps: spec.deps.iter().map(AssetKey::to_string).collect(),
                description: spec.description.clone(),
                owners: spec.owners.clone(),
                code_version: spec.code_version.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Reads the catalog (with freshness) and the latest `runs` runs.
pub async fn load(engine: &Engine, runs: i64) -> Result<Snapshot, EngineError> {
    let project = engine.project();
    let statuses = engine.status(None).await?;
    let outcomes = engine.reader().latest_step_outcomes(None).await?;
    let mut assets = Vec::with_capacity(statuses.len());
    for s in statuses {
        let Some(spec) = project.assets.get(&s.key) else {
            continue;
        };
        let failed = matches!(
            outcomes
                .get(&StepKey::whole(s.key.clone()))
                .map(|o| o.status),
            Some(StepStatus::Failed)
        ) && s.state != "fresh";
        let state = if failed {
            "failed".to_string()
        } else {
            s.state.replace('_', "-")
        };
        let reason = match &s.freshness {
            Freshness::Stale(r) => Some(r.join("; ")),
            _ => None,
        };
        assets.push(AssetRow {
            key: s.key.to_string(),
            kind: spec.kind.clone(),
            group: spec.group.clone(),
            state,
            reason,
            last: s.latest.as_ref().map(|m| m.created_at.clone()),
            rows: s.latest.as_ref().map(|m| m.m.row_count),
            partitions: s
                .partitions
                .as_ref()
                .map(|c| format!("{}/{}", c.fresh, c.total)),
            deps: spec.deps.iter().map(AssetKey::to_string).collect(),
            description: spec.description.clone(),
            owners: spec.owners.clone(),
            code_version: spec.code_version.clone(),
        });
    }
    let runs = self::runs(engine, runs).await?;
    let backfills = engine
        .backfills(20)
        .await?
        .into_iter()
        .map(|b| BackfillRow {
            id: b.record.backfill_id.as_str().to_string(),
            selection: b.record.selection.clone().unwrap_or_else(|| "*".into()),
            partitions: b.record.partitions.clone(),
            state: b.state.as_str().to_string(),
            done: b.done,
            failed: b.failed,
            total: b.record.steps.max(0) as usize,
            runs: b.chunks.len(),
            created_at: b.record.created_at.clone(),
        })
        .collect();
    let now = chrono::Utc::now();
    let mut schedules = Vec::new();
    for s in &project.schedules {
        schedules.push(ScheduleRow {
            name: s.name.clone(),
            cron: format!("{} ({})", s.cron, s.timezone),
            selection: s.selection.clone().unwrap_or_else(|| "*".into()),
            // On the schedule's own clock (with its offset), as it is written.
            next: s.next_after(now).map(|t| s.local(t)),
            last: engine.reader().last_tick(&s.name).await?.map(|t| {
                match chrono::DateTime::parse_from_rfc3339(&t) {
                    Ok(at) => s.local(at.with_timezone(&chrono::Utc)),
                    Err(_) => t,
                }
            }),
        });
    }
    Ok(Snapshot {
        project: project.config.name.clone(),
        assets,
        runs,
        backfills,
        schedules,
    })
}

impl RunDetail {
    /// Loads run `id` (its steps, and its events after the ones already in `self.log`).
    pub async fn load(&mut self, engine: &Engine, id: &str) -> Result<(), EngineError> {
        let store = engine.reader();
        let run = store.get_run(id).await?;
        let run_id: RunId = run.run_id.clone();
        if self.run.as_ref().map(|r| r.id.as_str()) != Some(run_id.as_str()) {
            self.log.clear();
        }
        self.run = Some(run_row(&run));
        self.steps = store
            .steps(&run_id)
            .await?
            .into_iter()
            .map(|s| StepRow {
                step_id: s.step_id,
                status: s.status.as_str().to_string(),
                attempt: s.attempt,
                started_at: s.started_at,
                finished_at: s.finished_at,
                message: s.error.or(s.reason),
            })
            .collect();
        let after = self.log.last().map(|l| l.id).unwrap_or(0);
        let new = store.events(&run_id, after).await?;
        self.log.extend(new.into_iter().map(|e| LogLine {
            id: e.id,
            ts: e.ts,
            step: e.event.step_id.clone(),
            message: e.event.message.clone(),
        }));
        Ok(())
    }
}

/// Steps per state, for a progress summary.
pub fn step_counts(steps: &[StepRow]) -> HashMap<&str, usize> {
    let mut out = HashMap::new();
    for s in steps {
        *out.entry(s.status.as_str()).or_default() += 1;
    }
    out
}

/// One materialization in an asset's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The Delta version it wrote.
    pub delta_version: i64,
    /// Its partition, if any.
    pub partition: Option<String>,
    /// Rows.
    pub rows: i64,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// Its run.
    pub run_id: String,
    /// Whether downstream reads it.
    pub published: bool,
    /// The upstream versions it read (`key@version`).
    pub reads: Vec<String>,
}

/// An asset opened from the catalog: its recent materializations and the latest one's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetDetail {
    /// The asset.
    pub key: String,
    /// Newest first.
    pub history: Vec<Version>,
    /// The latest materialization's checks: (name, passed, severity).
    pub checks: Vec<(String, bool, String)>,
}

impl AssetDetail {
    /// Loads the latest `limit` materializations of `key` and the newest one's checks.
    pub async fn load(engine: &Engine, key: &str, limit: i64) -> Result<Self, EngineError> {
        let asset = AssetKey::parse(key).map_err(|e| {
            EngineError::from(spine_engine::DefinitionError::new("E0402", e.to_string()))
        })?;
        let ms = engine.reader().materializations(&asset, limit).await?;
        let checks = match ms.first() {
            Some(m) => engine
                .reader()
                .check_results(m.id)
                .await?
                .into_iter()
                .map(|c| {
                    (
                        c.outcome.name.clone(),
                        c.outcome.passed,
                        format!("{:?}", c.outcome.severity).to_lowercase(),
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(AssetDetail {
            key: key.to_string(),
            history: ms
                .into_iter()
                .map(|m| Version {
                    delta_version: m.m.delta_version,
                    partition: m.m.partition_key.as_ref().map(|p| p.as_str().to_string()),
                    rows: m.m.row_count,
                    created_at: m.created_at.clone(),
                    run_id: m.m.run_id.as_str().to_string(),
                    published: m.m.published,
                    reads: m
                        .m
                        .upstream
                        .iter()
                        .map(|u| match u.delta_version {
                            Some(v) => format!("{}@{v}", u.key),
                            None => format!("{} (observed)", u.key),
                        })
                        .collect(),
                })
                .collect(),
            checks,
        })
    }
}
