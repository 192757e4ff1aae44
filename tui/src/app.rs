//! The UI's state and what each key does, with no terminal and no store: keys go in
//! ([`App::on_key`]), [`Effect`]s that need the store come out, and data comes back in through
//! [`App::set_snapshot`], [`App::set_run`] and [`App::set_asset`].

use crate::model::{AssetDetail, RunDetail, Snapshot};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The top-level views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The catalog.
    Assets,
    /// The graph around one asset.
    Lineage,
    /// Recent runs.
    Runs,
    /// Backfills and schedules.
    Backfills,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 4] = [Tab::Assets, Tab::Lineage, Tab::Runs, Tab::Backfills];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Assets => "Assets",
            Tab::Lineage => "Lineage",
            Tab::Runs => "Runs",
            Tab::Backfills => "Backfills",
        }
    }
}

/// A drill-down opened over a tab (esc goes back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// One asset.
    Asset(String),
    /// One run.
    Run(String),
    /// One backfill.
    Backfill(String),
}

/// What the UI needs from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Load (or refresh) a run's detail.
    LoadRun(String),
    /// Load an asset's detail.
    LoadAsset(String),
    /// Load (or refresh) a backfill's detail.
    LoadBackfill(String),
    /// Cancel this backfill.
    CancelBackfill(String),
    /// Record a run of this selection (forced) and start executing it.
    Materialize(String),
    /// Record a re-execution of this run from its failure and start executing it.
    Rerun(String),
    /// Cancel this run.
    Cancel(String),
    /// Leave.
    Quit,
}

/// Columns of the Assets table, for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Topological order (the project's).
    Graph,
    /// Key.
    Key,
    /// Status.
    Status,
    /// Last materialized.
    Last,
    /// Rows.
    Rows,
}

impl SortBy {
    fn next(self) -> SortBy {
        match self {
            SortBy::Graph => SortBy::Key,
            SortBy::Key => SortBy::Status,
            SortBy::Status => SortBy::Last,
            SortBy::Last => SortBy::Rows,
            SortBy::Rows => SortBy::Graph,
        }
    }

    /// Its name in the status line.
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Graph => "graph order",
            SortBy::Key => "key",
            SortBy::Status => "status",
            SortBy::Last => "last materialized",
            SortBy::Rows => "rows",
        }
    }
}

/// What the bottom line is taking input for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Keys are commands.
    None,
    /// `/`: typing a filter.
    Filter,
    /// `:`: typing a view name.
    Command(String),
}

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    /// The data shown.
    pub snapshot: Snapshot,
    /// The current tab.
    pub tab: Tab,
    /// A drill-down over it.
    pub detail: Option<Detail>,
    /// The opened run's steps and log.
    pub run: RunDetail,
    /// The opened asset's history.
    pub asset: AssetDetail,
    /// The Assets filter (a substring of key, kind, group or status).
    pub filter: String,
    /// Bottom-line input mode.
    pub input: Input,
    /// Sort of the Assets table.
    pub sort: SortBy,
    /// Sort descending.
    pub descending: bool,
    /// Selected row of the Assets table (an index into [`App::visible_assets`]).
    pub asset_row: usize,
    /// Selected row of the Runs table.
    pub run_row: usize,
    /// The help overlay is open.
    pub help: bool,
    /// A message for the bottom line (an error loading, a confirmation).
    pub message: Option<String>,
    /// Where the Lineage view is.
    pub lineage: crate::state::LineageState,
    /// The index of the snapshot's graph.
    pub graph: crate::state::Graph,
    /// An action waiting for a yes.
    pub confirm: Option<crate::state::Confirm>,
    /// The opened backfill's chunks and failures.
    pub backfill: crate::state::BackfillDetail,
    /// Selected row of the Backfills table.
    pub backfill_row: usize,
    /// Selected chunk of the opened backfill.
    pub backfill_chunk: usize,
    /// The step picked in the opened run (its error and log lines are shown), if any.
    pub run_step: Option<usize>,
}

impl App {
    /// A UI over `snapshot`, on the Assets tab.
    pub fn new(snapshot: Snapshot) -> Self {
        App {
            graph: crate::state::Graph::of(&snapshot),
            snapshot,
            tab: Tab::Assets,
            detail: None,
            run: RunDetail::default(),
            asset: AssetDetail::default(),
            filter: String::new(),
            input: Input::None,
            sort: SortBy::Graph,
            descending: false,
            asset_row: 0,
            run_row: 0,
            help: false,
            message: None,
            lineage: Default::default(),
            confirm: None,
            backfill: Default::default(),
            backfill_row: 0,
            backfill_chunk: 0,
            run_step: None,
        }
    }

    /// Replaces the data, keeping the selection on the same asset and run where they still exist.
    pub fn set_snapshot(&mut self, snapshot: Snapshot) {
        let asset = self.selected_asset().map(|a| a.key.clone());
        let run = self.selected_run().map(|r| r.id.clone());
        self.graph = crate::state::Graph::of(&snapshot);
        self.snapshot = snapshot;
        if let Some(k) = asset {
            if let Some(i) = self.visible_assets().iter().position(|a| a.key == k) {
                self.asset_row = i;
            }
        }
        if let Some(id) = run {
            if let Some(i) = self.snapshot.runs.iter().position(|r| r.id == id) {
                self.run_row = i;
            }
        }
        self.clamp();
    }

    /// The opened run's detail, loaded.
    pub fn set_run(&mut self, run: RunDetail) {
        self.run = run;
    }

    /// The opened backfill's detail, loaded.
    pub fn set_backfill(&mut self, backfill: crate::state::BackfillDetail) {
        self.backfill_chunk = self
            .backfill_chunk
            .min(backfill.chunks.len().saturating_sub(1));
        self.backfill = backfill;
    }

    /// The opened asset's detail, loaded.
    pub fn set_asset(&mut self, asset: AssetDetail) {
        self.asset = asset;
    }

    /// The assets the filter keeps, in the chosen order.
    pub fn visible_assets(&self) -> Vec<&crate::model::AssetRow> {
        let f = self.filter.to_lowercase();
        let mut rows: Vec<&crate::model::AssetRow> = self
            .snapshot
            .assets
            .iter()
            .filter(|a| {
                f.is_empty()
                    || [&a.key, &a.kind, &a.group, &a.state]
                        .iter()
                        .any(|s| s.to_lowercase().contains(&f))
            })
            .collect();
        match self.sort {
            SortBy::Graph => {}
            SortBy::Key => rows.sort_by(|a, b| a.key.cmp(&b.key)),
            SortBy::Status => rows.sort_by(|a, b| (&a.state, &a.key).cmp(&(&b.state, &b.key))),
            SortBy::Last => rows.sort_by(|a, b| (&a.last, &a.key).cmp(&(&b.last, &b.key))),
            SortBy::Rows => rows.sort_by(|a, b| (a.rows, &a.key).cmp(&(b.rows, &b.key))),
        }
        if self.descending {
            rows.reverse();
        }
        rows
    }

    /// The selected asset of the Assets table.
    pub fn selected_asset(&self) -> Option<&crate::model::AssetRow> {
        self.visible_assets().get(self.asset_row).copied()
    }

    /// The selected run of the Runs table.
    pub fn selected_run(&self) -> Option<&crate::model::RunRow> {
        self.snapshot.runs.get(self.run_row)
    }

    fn clamp(&mut self) {
        let n = self.visible_assets().len();
        self.asset_row = self.asset_row.min(n.saturating_sub(1));
        self.run_row = self.run_row.min(self.snapshot.runs.len().saturating_sub(1));
        self.backfill_row = self
            .backfill_row
            .min(self.snapshot.backfills.len().saturating_sub(1));
    }

    fn move_by(&mut self, delta: isize) {
        let (row, len) = match self.tab {
            Tab::Runs => (&mut self.run_row, self.snapshot.runs.len()),
            Tab::Backfills => (&mut self.backfill_row, self.snapshot.backfills.len()),
            _ => {
                let len = self.visible_assets().len();
                (&mut self.asset_row, len)
            }
        };
        let next = (*row as isize + delta).clamp(0, len.saturating_sub(1) as isize);
        *row = next as usize;
    }

    /// Handles a key; returns what must be loaded or done outside.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Effect::Quit);
        }
        self.message = None;
        match self.input.clone() {
            Input::Filter => {
                match key.code {
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.input = Input::None;
                    }
                    KeyCode::Enter => self.input = Input::None,
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.asset_row = 0;
                self.clamp();
                return None;
            }
            Input::Command(mut text) => {
                match key.code {
                    KeyCode::Esc => self.input = Input::None,
                    KeyCode::Enter => {
                        self.input = Input::None;
                        return self.command(text.trim());
                    }
                    KeyCode::Tab => self.complete(text),
                    KeyCode::Backspace => {
                        text.pop();
                        self.input = Input::Command(text);
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.input = Input::Command(text);
                    }
                    _ => {}
                }
                return None;
            }
            Input::None => {}
        }
        if self.confirm.is_some() {
            return self.confirm_key(key.code);
        }
        if self.help {
            // Any key closes the help; `q` still quits.
            self.help = false;
            return (key.code == KeyCode::Char('q')).then_some(Effect::Quit);
        }
        if self.tab == Tab::Lineage && self.detail.is_none() && self.lineage_key(key.code) {
            return None;
        }
        if let Some(effect) = self.backfill_key(key.code) {
            return effect;
        }
        if self.step_key(key.code) {
            return None;
        }
        if self.action_key(key.code) {
            return None;
        }
        match key.code {
            KeyCode::Char('q') => return Some(Effect::Quit),
            KeyCode::Char('?') => self.help = true,
            KeyCode::Char(':') => self.input = Input::Command(String::new()),
            KeyCode::Char('/') if self.detail.is_none() && self.tab == Tab::Assets => {
                self.input = Input::Filter
            }
            KeyCode::Char('1') => self.switch(Tab::Assets),
            KeyCode::Char('2') => self.switch(Tab::Lineage),
            KeyCode::Char('3') => self.switch(Tab::Runs),
            KeyCode::Char('4') => self.switch(Tab::Backfills),
            KeyCode::Tab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                self.switch(Tab::ALL[(i + 1) % Tab::ALL.len()]);
            }
            // Esc closes a detail (the guard takes it); with none open, it clears the filter.
            KeyCode::Esc if self.detail.take().is_none() && !self.filter.is_empty() => {
                self.filter.clear();
                self.clamp();
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(20),
            KeyCode::PageUp => self.move_by(-20),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX / 2),
            KeyCode::Char('s') if self.tab == Tab::Assets => {
                self.sort = self.sort.next();
                self.asset_row = 0;
            }
            KeyCode::Char('S') if self.tab == Tab::Assets => self.descending = !self.descending,
            KeyCode::Enter if self.detail.is_none() => return self.open(),
            _ => {}
        }
        None
    }

    pub(crate) fn switch(&mut self, tab: Tab) {
        self.tab = tab;
        self.detail = None;
    }

    /// Enter on the current row: an asset's or a run's detail.
    fn open(&mut self) -> Option<Effect> {
        match self.tab {
            Tab::Backfills => {
                let id = self.snapshot.backfills.get(self.backfill_row)?.id.clone();
                if self.backfill.id != id {
                    self.backfill = Default::default();
                    self.backfill_chunk = 0;
                }
                self.detail = Some(Detail::Backfill(id.clone()));
                Some(Effect::LoadBackfill(id))
            }
            Tab::Runs => {
                let id = self.selected_run()?.id.clone();
                self.run_step = None;
                self.detail = Some(Detail::Run(id.clone()));
                Some(Effect::LoadRun(id))
            }
            _ => {
                let key = self.selected_asset()?.key.clone();
                self.detail = Some(Detail::Asset(key.clone()));
                Some(Effect::LoadAsset(key))
            }
        }
    }
}

/// Every key, for the help overlay (and the README).
pub const KEYS: &[(&str, &str)] = &[
    (
        "1 2 3 4, tab",
        "switch view: Assets, Lineage, Runs, Backfills",
    ),
    (
        ":",
        "jump: :assets :lineage :runs :backfills, or an asset key (tab completes); :q quits",
    ),
    (
        "/",
        "filter assets as you type (enter keeps it, esc clears)",
    ),
    (
        "arrows",
        "lineage: move within a layer, or along an edge to the next",
    ),
    ("+ -", "lineage: more or fewer layers each way"),
    ("j k, arrows", "move; g G top and bottom; PgUp PgDn"),
    ("enter", "open the selected asset, run or backfill"),
    (
        "j k in a run",
        "pick a step: its error and its log lines (esc: all again)",
    ),
    ("esc", "back (close the detail, clear the filter)"),
    ("s S", "sort assets by the next column; reverse"),
    (
        "m",
        "materialize the selected asset (asks; d: with downstream)",
    ),
    (
        "r",
        "re-run the selected failed or cancelled run from its failure",
    ),
    (
        "c",
        "cancel the selected queued or running run, or backfill",
    ),
    ("?", "this help"),
    ("q, ctrl-c", "quit"),
];
