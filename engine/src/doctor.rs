//! `assets doctor`: each materialized asset's Delta table checked against the run store, without
//! trusting either — the log must be readable at the recorded version, every data file that version
//! references must exist, and the table must not have versions the store does not know. `repair`
//! moves an unreadable table aside (into `.spine/quarantine/`, nothing is deleted) and re-materializes
//! what is broken.

use crate::error::EngineError;
use crate::instance::Instance;
use crate::key::AssetKey;
use crate::materialize::MaterializeRequest;
use crate::store::{Materialization, NewEvent, RunStatus, StepOutcome, StepStatus};
use spine_schemas::events::Event;

/// What `doctor` found for one asset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnosis {
    /// The asset.
    pub key: AssetKey,
    /// `ok`, `broken`, `not_materialized`, or `read_in_place` (a source Spine keeps no table of).
    pub state: &'static str,
    /// The Delta version the run store records.
    pub recorded_version: Option<i64>,
    /// Each problem, naming the file and version where it can.
    pub problems: Vec<String>,
    /// Whether the table's log cannot be read (repair moves the table aside).
    #[serde(skip)]
    unreadable: bool,
    /// Whether the table has Spine commits the run store does not know (a store lost or restored
    /// from an older copy): repair re-records them from their commit info.
    #[serde(skip)]
    behind: bool,
}

/// What `doctor --repair` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Repair {
    /// Assets whose unknown commits were recorded from their commit info.
    pub re_recorded: Vec<AssetKey>,
    /// The run that re-materialized what was still broken.
    pub run: Option<crate::materialize::RunReport>,
}

impl Diagnosis {
    fn of(key: &AssetKey, state: &'static str, recorded_version: Option<i64>) -> Self {
        Diagnosis {
            key: key.clone(),
            state,
            recorded_version,
            problems: Vec::new(),
            unreadable: false,
            behind: false,
        }
    }
}

impl Instance {
    /// Checks the tables of the selected assets (see the module docs).
    pub async fn doctor(&self, selection: Option<&str>) -> Result<Vec<Diagnosis>, EngineError> {
        let selected = crate::selection::select(&self.project, selection)?;
        let latest = self.store.latest_materializations().await?;
        let mut out = Vec::new();
        for key in self
            .project
            .graph
            .topological_order()
            .unwrap_or_default()
            .into_iter()
            .filter(|k| selected.contains(*k))
        {
            let diagnosis = if self.project.assets[key].read_in_place() {
                // A source read in place has no table of Spine's to check.
                Diagnosis::of(key, "read_in_place", None)
            } else {
                // The table's latest recorded commit: the whole asset's, or the newest of its
                // partitions' (they share one table).
                let recorded = latest
                    .iter()
                    .filter(|(step, _)| step.asset == *key)
                    .map(|(_, m)| m)
                    .max_by_key(|m| m.m.delta_version);
                // Its newest record, published or held back by a failed check.
                let newest_record = self.store.materializations(key, 1).await?;
                let newest = newest_record.first().map_or(-1, |m| m.m.delta_version);
                match recorded.or(newest_record.first()) {
                    Some(m) => self.diagnose(key, m, newest).await,
                    None => self.unrecorded(key).await,
                }
            };
            out.push(diagnosis);
        }
        Ok(out)
    }

    /// An asset the run store records nothing of: `not_materialized`, or `broken` when its table
    /// exists all the same (a run store that was lost or restored from an older copy).
    async fn unrecorded(&self, key: &AssetKey) -> Diagnosis {
        let mut d = Diagnosis::of(key, "not_materialized", None);
        if let Ok(Some(table)) = self.warehouse.open(key, None).await {
            let latest = table.version().map(|v| v as i64).unwrap_or(-1);
            if latest >= 0 {
                d.state = "broken";
                d.behind = true;
                d.problems.push(format!(
                    "the table has versions 0 to {latest} but the run store records no \
                     materialization of it (was the run store lost or restored from an older copy?)"
                ));
            }
        }
        d
    }

    async fn diagnose(&self, key: &AssetKey, m: &Materialization, newest: i64) -> Diagnosis {
        // The version its rows are read at: a compaction of the recorded one after `assets optimize`.
        let recorded = self.read_version(key, m.m.delta_version).await;
        let mut problems = Vec::new();
        let mut unreadable = false;
        let mut behind = false;
        // Empty or unparsable commit files, named with their version.
        for (v, file) in self.warehouse.local_commit_files(key) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let bad = text.trim().is_empty()
                || text
                    .lines()
                    .any(|l| serde_json::from_str::<serde_json::Value>(l).is_err());
            if bad {
                unreadable |= v <= recorded;
                problems.push(format!(
                    "commit file {} (version {v}) is empty or not valid JSON",
                    file.display()
                ));
            }
        }
        match self.warehouse.open(key, None).await {
            Ok(None) => {
                unreadable = true;
                problems.push(format!(
                    "the table is missing (recorded at Delta version {recorded})"
                ));
            }
            Ok(Some(table)) => {
                let latest = table.version().map(|v| v as i64).unwrap_or(-1);
                if latest < recorded {
                    unreadable = true;
                    problems.push(format!(
                        "the table's latest version is {latest}, older than the recorded version {recorded}"
                    ));
                } else if latest > recorded.max(newest)
                    && !self
                        .only_maintenance(&table, latest - recorded.max(newest))
                        .await
                {
                    behind = true;
                    problems.push(format!(
                        "the table has versions after the recorded one ({} → {latest}) that the run store does not know",
                        recorded.max(newest)
                    ));
                }
            }
            Err(e) => {
                unreadable = true;
                problems.push(e.to_string());
            }
        }
        if !unreadable {
            match self.warehouse.data_files(key, recorded).await {
                Ok(files) => {
                    for f in files {
                        if let Ok(p) = f.to_file_path() {
                            if !p.is_file() {
                                problems.push(format!(
                                    "data file {} of version {recorded} is missing",
                                    p.display()
                                ));
                            }
                        }
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        Diagnosis {
            key: key.clone(),
            state: if problems.is_empty() { "ok" } else { "broken" },
            recorded_version: Some(recorded),
            problems,
            unreadable,
            behind,
        }
    }

    /// Whether the table's latest `n` commits are all table maintenance (OPTIMIZE, VACUUM), which
    /// changes no rows.
    async fn only_maintenance(&self, table: &deltalake::DeltaTable, n: i64) -> bool {
        use futures::StreamExt;
        let mut commits = table.history(Some(n.max(0) as usize));
        let mut seen = 0;
        while let Some(c) = commits.next().await {
            let Ok(c) = c else { return false };
            seen += 1;
            let op = c.operation.as_deref().unwrap_or_default();
            if !matches!(op, "VACUUM START" | "VACUUM END" | "OPTIMIZE") {
                return false;
            }
        }
        seen as i64 == n
    }

    /// Repairs what `diagnoses` found broken: commits a readable table holds and the store does not
    /// know are re-recorded from their own info (no recompute); unreadable tables are moved into
    /// `.spine/quarantine/`; what is still broken is re-materialized (forced) in one run.
    pub async fn repair(&self, diagnoses: &[Diagnosis]) -> Result<Repair, EngineError> {
        let mut repair = Repair::default();
        // A readable table that is only ahead of the store: its commits are recorded from their
        // own info instead of being computed again.
        let behind: Vec<&Diagnosis> = diagnoses
            .iter()
            .filter(|d| d.behind && !d.unreadable)
            .collect();
        let rerecorded = self.rerecord(&behind).await?;
        repair.re_recorded = rerecorded.clone();
        let broken: Vec<&Diagnosis> = diagnoses
            .iter()
            .filter(|d| {
                d.state == "broken" && !(rerecorded.contains(&d.key) && d.problems.len() == 1)
            })
            .collect();
        if broken.is_empty() {
            return Ok(repair);
        }
        let stamp = self.clock.now().format("%Y%m%dT%H%M%S");
        for d in broken.iter().filter(|d| d.unreadable) {
            if let Some(dir) = self
                .warehouse
                .local_table_dir(&d.key)
                .filter(|p| p.exists())
            {
                let to = self
                    .project
                    .config
                    .root
                    .join(".spine/quarantine")
                    .join(format!("{}-{stamp}", d.key.as_str().replace('/', "__")));
                let io = |e: std::io::Error| EngineError::Io {
                    path: to.clone(),
                    source: e,
                };
                std::fs::create_dir_all(to.parent().unwrap_or(&to)).map_err(io)?;
                std::fs::rename(&dir, &to).map_err(io)?;
                tracing::warn!(
                    "moved the unreadable table of {} to {}",
                    d.key,
                    to.display()
                );
            }
        }
        let selection: Vec<String> = broken.iter().map(|d| d.key.to_string()).collect();
        let report = self
            .materialize(MaterializeRequest {
                selection: Some(selection.join(" ")),
                force: true,
                ..Default::default()
            })
            .await?;
        repair.run = Some(report);
        Ok(repair)
    }

    /// Records, in one run of its own, the newest Spine commit of each step key of the `behind`
    /// assets' tables that the run store does not know, from the commit's own info (rows, data and
    /// code version, the upstream versions read). Upstreams first, so a downstream record points at
    /// its upstream's new record. Returns the assets recorded.
    async fn rerecord(&self, behind: &[&Diagnosis]) -> Result<Vec<AssetKey>, EngineError> {
        let mut found: Vec<(crate::key::StepKey, i64, crate::warehouse::CommitInfo)> = Vec::new();
        for d in behind {
            let after = d.recorded_version.unwrap_or(-1);
            let mut seen = std::collections::HashSet::new();
            for (version, info) in self.warehouse.commit_infos(&d.key, after).await? {
                let Some(step) = info
                    .step_id
                    .parse::<crate::key::StepKey>()
                    .ok()
                    .filter(|s| s.asset == d.key)
                else {
                    continue;
                };
                if seen.insert(step.clone()) {
                    found.push((step, version, info));
                }
            }
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let steps: Vec<crate::key::StepKey> = found.iter().map(|(s, _, _)| s.clone()).collect();
        let mut assets: Vec<&str> = steps.iter().map(|s| s.asset.as_str()).collect();
        assets.dedup();
        let planned = self.planned_run_by(Some(&assets.join(" ")), false, &steps, "doctor");
        let run_id = planned.run.run_id.clone();
        self.store.create_run(&planned.run, &planned.steps).await?;
        let mut recorded: Vec<AssetKey> = Vec::new();
        for (step, version, info) in found {
            let seq = info.seq;
            let step_id = step.to_string();
            let mut m = crate::recovery::materialization_from_commit(
                &step,
                (&run_id, &step_id),
                seq,
                version,
                &info,
            );
            // The ids in the commit are the old store's: point at this store's record of the
            // version read, when it has one.
            for u in &mut m.upstream {
                u.materialization_id = match u.delta_version {
                    Some(v) if v >= 0 => self
                        .store
                        .materialization_at(&u.key, u.partition.as_ref().map(|p| p.as_str()), v)
                        .await?
                        .map(|r| r.id),
                    // A source read in place: its newest observation the store still has.
                    _ => {
                        let up = crate::key::StepKey {
                            asset: u.key.clone(),
                            partition: u.partition.clone(),
                        };
                        self.store.latest_materialization(&up).await?.map(|r| r.id)
                    }
                };
            }
            let msg = format!(
                "re-recorded {step} from its commit (Delta version {version}): the run store did not know it"
            );
            let ev = NewEvent::of(
                &run_id,
                Some(&step_id),
                msg.clone(),
                &Event::Log {
                    level: "warn".into(),
                },
            );
            self.store
                .finish_step(
                    &run_id,
                    &step,
                    StepOutcome {
                        failure_class: None,
                        status: StepStatus::Succeeded,
                        error: None,
                        reason: Some(msg),
                        materialization: Some(m),
                        events: vec![ev],
                    },
                )
                .await?;
            if !recorded.contains(&step.asset) {
                recorded.push(step.asset.clone());
            }
        }
        let msg = format!("doctor --repair re-recorded {} step(s)", steps.len());
        let ev = NewEvent::of(&run_id, None, msg.clone(), &Event::RunSucceeded {});
        self.store
            .set_run_status(&run_id, RunStatus::Succeeded, None, ev)
            .await?;
        Ok(recorded)
    }
}
