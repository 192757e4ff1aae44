//! Actions, each asked first: `m` materializes the selected asset (`d`: with everything downstream),
//! `r` re-runs a failed or cancelled run from its failure, `c` cancels a queued or running run. The
//! question is an overlay; `y` (or `d`) confirms, anything else drops it. What was confirmed comes out
//! as an [`Effect`] for the terminal side to do.

use crate::app::{App, Detail, Effect, Tab};
use ratatui::crossterm::event::KeyCode;
use std::collections::{BTreeSet, VecDeque};

pub use crate::state::Confirm;

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

impl App {
    /// The asset an action applies to: the open asset, the lineage selection or the catalog's.
    fn action_asset(&self) -> Option<String> {
        match (&self.detail, self.tab) {
            (Some(Detail::Asset(k)), _) => Some(k.clone()),
            (Some(Detail::Run(_)) | Some(Detail::Backfill(_)), _) => None,
            (None, Tab::Lineage) => self.lineage_selected(),
            (None, Tab::Assets) => self.selected_asset().map(|a| a.key.clone()),
            _ => None,
        }
    }

    /// The run an action applies to: the open run, or the Runs table's selection.
    fn action_run(&self) -> Option<(String, String)> {
        match (&self.detail, self.tab) {
            (Some(Detail::Run(id)), _) => {
                let status = match &self.run.run {
                    Some(r) if &r.id == id => r.status.clone(),
                    _ => self
                        .snapshot
                        .runs
                        .iter()
                        .find(|r| &r.id == id)
                        .map(|r| r.status.clone())?,
                };
                Some((id.clone(), status))
            }
            (None, Tab::Runs) => self
                .selected_run()
                .map(|r| (r.id.clone(), r.status.clone())),
            _ => None,
        }
    }

    /// How many assets read `key`, directly or not.
    pub fn downstream_count(&self, key: &str) -> usize {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([key.to_string()]);
        while let Some(k) = queue.pop_front() {
            for d in self.graph.readers(&k) {
                if seen.insert(d.clone()) {
                    queue.push_back(d.clone());
                }
            }
        }
        seen.len()
    }

    /// `m`, `r`, `c`: asks to materialize, re-run or cancel. False for other keys.
    pub(crate) fn action_key(&mut self, code: KeyCode) -> bool {
        match code {
            KeyCode::Char('m') => match self.action_asset() {
                Some(key) => {
                    let downstream = self.downstream_count(&key);
                    self.confirm = Some(Confirm::Materialize { key, downstream });
                }
                None => self.message = Some("select an asset to materialize".into()),
            },
            KeyCode::Char('r') => match self.action_run() {
                Some((run, status)) if status == "failed" || status == "cancelled" => {
                    self.confirm = Some(Confirm::Rerun { run, status })
                }
                Some((run, status)) => {
                    let why = "only a failed or cancelled run is re-run from its failure";
                    self.message = Some(format!("run {} is {status}: {why}", short(&run)))
                }
                None => self.message = Some("select a run to re-run".into()),
            },
            KeyCode::Char('c') if self.action_backfill().is_some() => {
                if let Some((id, state)) = self.action_backfill() {
                    if matches!(
                        state.as_str(),
                        "queued" | "running" | "interrupted" | "waiting"
                    ) {
                        self.confirm = Some(Confirm::CancelBackfill { id, state });
                    } else {
                        self.message = Some(format!(
                            "backfill {} is {state}: nothing to cancel",
                            short(&id)
                        ));
                    }
                }
            }
            KeyCode::Char('c') => match self.action_run() {
                Some((run, status))
                    if matches!(status.as_str(), "queued" | "running" | "waiting") =>
                {
                    self.confirm = Some(Confirm::Cancel { run, status })
                }
                Some((run, status)) => {
                    self.message = Some(format!(
                        "run {} has ended ({status}): nothing to cancel",
                        short(&run)
                    ))
                }
                None => self.message = Some("select a run to cancel".into()),
            },
            _ => return false,
        }
        true
    }

    /// The answer to the open question.
    pub(crate) fn confirm_key(&mut self, code: KeyCode) -> Option<Effect> {
        let confirm = self.confirm.take()?;
        let effect = match (&confirm, code) {
            (Confirm::Materialize { key, .. }, KeyCode::Char('y')) => {
                Some(Effect::Materialize(key.clone()))
            }
            (Confirm::Materialize { key, downstream }, KeyCode::Char('d')) if *downstream > 0 => {
                Some(Effect::Materialize(format!("{key}+")))
            }
            (Confirm::Rerun { run, .. }, KeyCode::Char('y')) => Some(Effect::Rerun(run.clone())),
            (Confirm::Cancel { run, .. }, KeyCode::Char('y')) => Some(Effect::Cancel(run.clone())),
            (Confirm::CancelBackfill { id, .. }, KeyCode::Char('y')) => {
                Some(Effect::CancelBackfill(id.clone()))
            }
            _ => None,
        };
        if effect.is_none() {
            self.message = Some("nothing done".into());
        }
        effect
    }

    /// Shows run `id` (a run just started from the UI): the Runs tab with it open.
    pub fn open_run(&mut self, id: &str) -> Effect {
        self.tab = Tab::Runs;
        if let Some(i) = self.snapshot.runs.iter().position(|r| r.id == id) {
            self.run_row = i;
        }
        self.run_step = None;
        self.detail = Some(Detail::Run(id.to_string()));
        Effect::LoadRun(id.to_string())
    }
}
