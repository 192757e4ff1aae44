//! The Lineage view: the neighbourhood of one asset in layers, upstream to the left and downstream to
//! the right (each asset in the layer of its shortest distance), `depth` layers each way. Only the
//! neighbourhood is computed and drawn, so a 10,000-asset project costs what its neighbourhood costs.
//! Each asset is a box in its state's colour; edges run between adjacent columns (see `edges`), the
//! selected asset's highlighted, and moving left or right follows one.

use crate::app::App;
use crate::style::state_style;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Widget};
use ratatui::Frame;
use std::collections::{BTreeSet, HashMap, VecDeque};

pub use crate::state::{Graph, LineageState};

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

/// Rows one asset's box takes.
const BOX_H: u16 = 3;
/// The narrowest column drawn; layers farthest from the selected one are left out to keep this.
const MIN_W: u16 = 12;

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let keep: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{keep}…")
}

/// Draws the Lineage view: a column per layer, each asset a box in its state's colour (the
/// selected one double-lined, its direct neighbours thick), and the edges between adjacent columns
/// in the gaps, the selected asset's highlighted.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(center) = app.lineage_center() else {
        frame.render_widget(
            Paragraph::new("no asset selected").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let mut layers = layers(app, &center, app.lineage.depth);
    let selected = app.lineage_selected();
    let gap_w: u16 = if area.width >= 140 { 6 } else { 4 };
    let fits = |n: u16| n <= 1 || area.width.saturating_sub(gap_w * (n - 1)) / n >= MIN_W;
    while !fits(layers.len() as u16) {
        let far = |l: Option<&(i32, Vec<String>)>| l.map_or(0, |l| (l.0 - app.lineage.layer).abs());
        if far(layers.first()) >= far(layers.last()) {
            layers.remove(0);
        } else {
            layers.pop();
        }
    }
    let n = layers.len().max(1) as u16;
    let col_w = area.width.saturating_sub(gap_w * (n - 1)) / n;
    let slots = (area.height.saturating_sub(1) / BOX_H).max(1) as usize;
    let asset = |k: &str| app.graph.index.get(k).map(|i| &app.snapshot.assets[*i]);
    let buf = frame.buffer_mut();
    // Where each drawn box is: (column, slot).
    let mut drawn: HashMap<&str, (usize, usize)> = HashMap::new();
    for (c, (d, keys)) in layers.iter().enumerate() {
        let x = area.x + c as u16 * (col_w + gap_w);
        // The selected layer keeps its selection in view; another, the selection's first neighbour.
        let focus = if *d == app.lineage.layer {
            app.lineage.row
        } else {
            selected
                .as_ref()
                .and_then(|s| keys.iter().position(|k| app.linked(s, k)))
                .unwrap_or(0)
        };
        let offset = focus.saturating_sub(slots - 1);
        let name = match d {
            0 => "selected".to_string(),
            d if *d < 0 => format!("upstream {}", -d),
            d => format!("downstream {d}"),
        };
        let title = if keys.len() > slots {
            let last = (offset + slots).min(keys.len());
            format!("{name} · {}–{last} of {}", offset + 1, keys.len())
        } else {
            name
        };
        let mut style = Style::default().fg(Color::Gray);
        if *d == app.lineage.layer {
            style = Style::default().add_modifier(Modifier::BOLD);
        }
        buf.set_string(x, area.y, clip(&title, col_w as usize), style);
        for (slot, k) in keys.iter().skip(offset).take(slots).enumerate() {
            drawn.insert(k.as_str(), (c, slot));
            let state = asset(k).map(|a| a.state.as_str()).unwrap_or_default();
            let is_sel = selected.as_deref() == Some(k.as_str());
            let kind = if is_sel {
                BorderType::Double
            } else if selected.as_ref().is_some_and(|s| app.linked(s, k)) {
                BorderType::Thick
            } else {
                BorderType::Plain
            };
            let mut name_style = Style::default();
            if is_sel {
                name_style = name_style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            let inner = col_w.saturating_sub(4) as usize;
            let line = Line::from(vec![
                Span::styled("■ ", state_style(state)),
                Span::styled(clip(k, inner), name_style),
            ]);
            let r = Rect {
                x,
                y: area.y + 1 + slot as u16 * BOX_H,
                width: col_w,
                height: BOX_H,
            };
            Paragraph::new(line)
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_type(kind)
                        .border_style(state_style(state)),
                )
                .render(r, buf);
        }
    }
    // Edges: a reader in column c + 1 of an asset in column c, both drawn.
    for c in 0..layers.len().saturating_sub(1) {
        let mut gap = crate::edges::Gap::new(gap_w, area.height.saturating_sub(1));
        let mut sources: Vec<&str> = Vec::new();
        for reader in layers[c + 1].1.iter() {
            let Some(&(_, to)) = drawn.get(reader.as_str()) else {
                continue;
            };
            for dep in asset(reader).map(|a| a.deps.as_slice()).unwrap_or_default() {
                let Some(&(dc, from)) = drawn.get(dep.as_str()) else {
                    continue;
                };
                if dc != c {
                    continue;
                }
                let i = match sources.iter().position(|s| *s == dep) {
                    Some(i) => i,
                    None => {
                        sources.push(dep);
                        sources.len() - 1
                    }
                };
                let turn = 1 + i % (gap_w as usize - 2);
                let lit = selected
                    .as_deref()
                    .is_some_and(|s| s == dep || s == reader.as_str());
                let mid = |slot: usize| slot * BOX_H as usize + 1;
                gap.edge(mid(from), mid(to), turn, lit);
            }
        }
        let at = Rect {
            x: area.x + c as u16 * (col_w + gap_w) + col_w,
            y: area.y + 1,
            width: gap_w,
            height: area.height.saturating_sub(1),
        };
        gap.render(at, buf);
    }
}
