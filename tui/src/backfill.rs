//! A backfill opened from the Backfills tab: its chunks (each with its latest run and how its step
//! keys stand) and its failed step keys with their errors. `j`/`k` pick a chunk, enter opens its
//! run, `c` asks to cancel the backfill.

use crate::app::{App, Detail, Effect, Tab};
use crate::style::{short_time, state_style};
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub use crate::state::{BackfillDetail, ChunkRow};

impl App {
    /// The backfill an action applies to: the open one, or the Backfills table's selection, with
    /// its state.
    pub(crate) fn action_backfill(&self) -> Option<(String, String)> {
        match (&self.detail, self.tab) {
            (Some(Detail::Backfill(id)), _) => {
                let state = if &self.backfill.id == id {
                    self.backfill.state.clone()
                } else {
                    self.snapshot
                        .backfills
                        .iter()
                        .find(|b| &b.id == id)
                        .map(|b| b.state.clone())?
                };
                Some((id.clone(), state))
            }
            (None, Tab::Backfills) => self
                .snapshot
                .backfills
                .get(self.backfill_row)
                .map(|b| (b.id.clone(), b.state.clone())),
            _ => None,
        }
    }

    /// Keys of the open backfill: `j`/`k` pick a chunk, enter opens its run. `None` when the key is
    /// not one of them.
    pub(crate) fn backfill_key(&mut self, code: KeyCode) -> Option<Option<Effect>> {
        if !matches!(self.detail, Some(Detail::Backfill(_))) {
            return None;
        }
        let n = self.backfill.chunks.len();
        match code {
            KeyCode::Down | KeyCode::Char('j') => {
                self.backfill_chunk = (self.backfill_chunk + 1).min(n.saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.backfill_chunk = self.backfill_chunk.saturating_sub(1)
            }
            KeyCode::Enter => {
                let run = self
                    .backfill
                    .chunks
                    .get(self.backfill_chunk)?
                    .run_id
                    .clone();
                return Some(Some(self.open_run(&run)));
            }
            _ => return None,
        }
        Some(None)
    }
}

/// The open backfill: its chunks above its failures.
pub(crate) fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let d = &app.backfill;
    if d.id.is_empty() {
        frame.render_widget(
            Paragraph::new("loading…").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    }
    let fail_h = (d.failures.len() as u16 * 2 + 2).clamp(3, area.height / 2);
    let [top, bottom] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(fail_h)]).areas(area);
    let rows: Vec<Row> = d
        .chunks
        .iter()
        .map(|c| {
            let (steps, done, failed, skipped) = c.steps;
            Row::new(vec![
                Cell::from(c.chunk.to_string()),
                Cell::from(c.range.clone()),
                Cell::from(c.run_id.chars().take(12).collect::<String>()),
                Cell::from(Span::styled(
                    c.run_status.clone(),
                    state_style(&c.run_status),
                )),
                Cell::from(c.runs.to_string()),
                Cell::from(format!("{done}/{steps}")),
                Cell::from(Span::styled(
                    if failed + skipped > 0 {
                        format!("{failed} failed, {skipped} skipped")
                    } else {
                        String::new()
                    },
                    state_style(if failed > 0 { "failed" } else { "skipped" }),
                )),
            ])
        })
        .collect();
    let title = format!(
        " backfill {} · {} · created {} · {} chunk(s) ",
        d.id.chars().take(12).collect::<String>(),
        d.state,
        short_time(&d.created_at),
        d.chunks.len()
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(23),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new([
            "CHUNK",
            "PARTITIONS",
            "RUN",
            "STATUS",
            "RUNS",
            "DONE",
            "PROBLEMS",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(title))
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ");
    let mut state = ratatui::widgets::TableState::default()
        .with_selected((!d.chunks.is_empty()).then_some(app.backfill_chunk));
    frame.render_stateful_widget(table, top, &mut state);
    let lines: Vec<Line> = if d.failures.is_empty() {
        vec![Line::from("no failed partitions")]
    } else {
        d.failures
            .iter()
            .map(|(step, error)| {
                Line::from(vec![
                    Span::styled(format!("{step}  "), Style::default().fg(Color::Red)),
                    Span::raw(error.clone()),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" failed partitions ({}) ", d.failures.len())),
        ),
        bottom,
    );
}
