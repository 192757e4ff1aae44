//! The Lineage view: the neighbourhood of one asset in layers, upstream to the left and downstream to
//! the right (each asset in the layer of its shortest distance), `depth` layers each way. Only the
//! neighbourhood is computed and drawn, so a 10,000-asset project costs what its neighbourhood costs.
//! The selected asset's direct neighbours are marked with arrows: moving left or right follows an edge.

use crate::app::App;
use crate::view::state_style;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// At most this many assets are listed per layer (the rest are counted).
const PER_LAYER: usize = 500;

/// The graph's index, rebuilt with each snapshot: where each asset is, and who reads it.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    index: HashMap<String, usize>,
    down: HashMap<String, Vec<String>>,
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

/// The layers around `center`: `(distance, keys)` from `-depth` to `depth`, empty ones left out.
pub fn layers(app: &App, center: &str, depth: usize) -> Vec<(i32, Vec<String>)> {
    let asset = |k: &str| app.graph.index.get(k).map(|i| &app.snapshot.assets[*i]);
    let walk = |next: &dyn Fn(&str) -> Vec<String>| -> Vec<Vec<String>> {
        let mut seen = BTreeSet::from([center.to_string()]);
        let mut out = vec![Vec::new(); depth];
        let mut queue = VecDeque::from([(center.to_string(), 0usize)]);
        while let Some((k, d)) = queue.pop_front() {
            if d == depth {
                continue;
            }
            for n in next(&k) {
                if seen.insert(n.clone()) {
                    out[d].push(n.clone());
                    queue.push_back((n, d + 1));
                }
            }
        }
        for l in &mut out {
            l.sort();
        }
        out
    };
    let up = walk(&|k| asset(k).map(|a| a.deps.clone()).unwrap_or_default());
    let downs = walk(&|k| app.graph.down.get(k).cloned().unwrap_or_default());
    let mut out = Vec::new();
    for (i, l) in up.into_iter().enumerate().rev() {
        out.push((-(i as i32) - 1, l));
    }
    out.push((0, vec![center.to_string()]));
    for (i, l) in downs.into_iter().enumerate() {
        out.push((i as i32 + 1, l));
    }
    out.retain(|(_, l)| !l.is_empty());
    out
}

impl App {
    /// The asset the Lineage view centers on.
    pub fn lineage_center(&self) -> Option<String> {
        self.lineage
            .center
            .clone()
            .or_else(|| self.selected_asset().map(|a| a.key.clone()))
    }

    /// The asset selected in the Lineage view.
    pub fn lineage_selected(&self) -> Option<String> {
        let center = self.lineage_center()?;
        let layers = layers(self, &center, self.lineage.depth);
        let (_, l) = layers.iter().find(|(d, _)| *d == self.lineage.layer)?;
        l.get(self.lineage.row).cloned()
    }

    /// Arrow keys, `+`/`-` and enter in the Lineage view; false for other keys.
    pub fn lineage_key(&mut self, code: ratatui::crossterm::event::KeyCode) -> bool {
        use ratatui::crossterm::event::KeyCode;
        let Some(center) = self.lineage_center() else {
            return false;
        };
        let layers = layers(self, &center, self.lineage.depth);
        let current = self.lineage_selected();
        let in_layer = |d: i32| layers.iter().find(|(x, _)| *x == d).map(|(_, l)| l);
        match code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.lineage.row = self.lineage.row.saturating_sub(1)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let n = in_layer(self.lineage.layer).map_or(0, Vec::len);
                self.lineage.row = (self.lineage.row + 1).min(n.saturating_sub(1));
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char('h') | KeyCode::Char('l') => {
                let step = if matches!(code, KeyCode::Left | KeyCode::Char('h')) {
                    -1
                } else {
                    1
                };
                let target = self.lineage.layer + step;
                let Some(l) = in_layer(target) else {
                    return true;
                };
                // Follow an edge of the selected asset when one leads into that layer.
                let linked = current
                    .as_ref()
                    .and_then(|c| l.iter().position(|k| self.linked(c, k)));
                self.lineage.layer = target;
                self.lineage.row = linked.unwrap_or(0);
            }
            KeyCode::Enter => {
                if let Some(k) = current {
                    self.lineage = LineageState {
                        center: Some(k),
                        depth: self.lineage.depth,
                        layer: 0,
                        row: 0,
                    };
                }
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.lineage.depth = (self.lineage.depth + 1).min(6)
            }
            KeyCode::Char('-') => {
                self.lineage.depth = self.lineage.depth.saturating_sub(1).max(1);
                if self.lineage.layer.unsigned_abs() as usize > self.lineage.depth {
                    self.lineage.layer = 0;
                    self.lineage.row = 0;
                }
            }
            _ => return false,
        }
        true
    }

    /// Whether `a` and `b` are joined by an edge (either way).
    fn linked(&self, a: &str, b: &str) -> bool {
        let deps = |k: &str| {
            self.graph
                .index
                .get(k)
                .map(|i| &self.snapshot.assets[*i].deps)
        };
        deps(a).is_some_and(|d| d.iter().any(|x| x == b))
            || deps(b).is_some_and(|d| d.iter().any(|x| x == a))
    }
}

/// Draws the Lineage view.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(center) = app.lineage_center() else {
        frame.render_widget(
            Paragraph::new("no asset selected").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let layers = layers(app, &center, app.lineage.depth);
    let selected = app.lineage_selected();
    let state = |k: &str| {
        app.graph
            .index
            .get(k)
            .map(|i| app.snapshot.assets[*i].state.clone())
            .unwrap_or_default()
    };
    let columns = Layout::horizontal(vec![
        Constraint::Ratio(1, layers.len() as u32);
        layers.len()
    ])
    .split(area);
    for ((d, keys), col) in layers.iter().zip(columns.iter()) {
        let title = match d {
            0 => " selected ".to_string(),
            d if *d < 0 => format!(" upstream {} ", -d),
            d => format!(" downstream {d} "),
        };
        let height = col.height.saturating_sub(2) as usize;
        let row = if *d == app.lineage.layer {
            app.lineage.row
        } else {
            0
        };
        let skip = row.saturating_sub(height.saturating_sub(1));
        let mut lines: Vec<Line> = keys
            .iter()
            .take(PER_LAYER)
            .skip(skip)
            .take(height)
            .map(|k| {
                let st = state(k);
                // The selected asset's direct neighbours: ← feeds it, → reads it.
                let mark = match &selected {
                    Some(s) if s == k => "▶ ",
                    Some(s) if app.linked(s, k) => {
                        if *d < app.lineage.layer {
                            "← "
                        } else {
                            "→ "
                        }
                    }
                    _ => "  ",
                };
                let mut style = state_style(&st);
                if selected.as_deref() == Some(k.as_str()) {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                let width = col.width.saturating_sub(6) as usize;
                let shown = if k.chars().count() > width {
                    let keep: String = k.chars().take(width.saturating_sub(1)).collect();
                    format!("{keep}…")
                } else {
                    k.clone()
                };
                Line::from(vec![
                    Span::raw(mark),
                    Span::styled(format!("■ {shown}"), style),
                ])
            })
            .collect();
        if keys.len() > PER_LAYER {
            lines.push(Line::from(format!("  … {} more", keys.len() - PER_LAYER)));
        }
        let mut block = Block::default().borders(Borders::ALL).title(title);
        if *d == app.lineage.layer {
            block = block.border_style(Style::default().add_modifier(Modifier::BOLD));
        }
        frame.render_widget(Paragraph::new(lines).block(block), *col);
    }
}
