//! Drawing the [`App`] into a ratatui frame: a tab bar, the current view (or its drill-down), the
//! key hints or input line, and the help overlay. Pure: the same state draws the same screen.

use crate::app::{App, Detail, Input, Tab, KEYS};
use crate::model::AssetRow;
pub use crate::style::duration;
use crate::style::{seconds, short_time, state_style, thousands, wrap};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_tabs(frame, app, top);
    match &app.detail {
        Some(Detail::Asset(_)) => crate::detail::draw_asset(frame, app, body),
        Some(Detail::Run(_)) => crate::detail::draw_run(frame, app, body),
        Some(Detail::Backfill(_)) => crate::backfill::draw(frame, app, body),
        None => match app.tab {
            Tab::Assets => draw_assets(frame, app, body),
            Tab::Lineage => crate::lineage::draw(frame, app, body),
            Tab::Runs => draw_runs(frame, app, body),
            Tab::Backfills => crate::ops::draw_backfills(frame, app, body),
        },
    }
    draw_bottom(frame, app, bottom);
    if app.help {
        draw_help(frame, frame.area());
    }
    if let Some(c) = &app.confirm {
        crate::ops::draw_confirm(frame, c, frame.area());
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| Line::from(format!("{} {}", i + 1, t.title())))
        .collect();
    let name = format!(" spine · {} ", app.snapshot.project);
    let tabs_width: u16 = titles.iter().map(|t| t.width() as u16 + 3).sum::<u16>() + 1;
    let name_width = Span::raw(name.as_str()).width() as u16;
    let room = area.width.saturating_sub(name_width + tabs_width);
    let summary = summary(app, room);
    let [n, t, _, right] = Layout::horizontal([
        Constraint::Length(name_width),
        Constraint::Length(tabs_width),
        Constraint::Min(0),
        Constraint::Length(summary_width(&summary)),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(name).style(Style::default().add_modifier(Modifier::BOLD)),
        n,
    );
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        t,
    );
    frame.render_widget(Paragraph::new(Line::from(summary)), right);
}

fn summary_width(spans: &[Span]) -> u16 {
    spans.iter().map(|s| s.width() as u16).sum()
}

/// How many assets are in each state, in the longest form that fits in `room` columns: every state,
/// then only the ones that need attention, then short labels, then nothing.
fn summary(app: &App, room: u16) -> Vec<Span<'static>> {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for a in &app.snapshot.assets {
        *counts.entry(a.state.as_str()).or_default() += 1;
    }
    let states = ["fresh", "stale", "upstream-stale", "missing", "failed"];
    fn short(s: &'static str) -> &'static str {
        match s {
            "upstream-stale" => "up-stale",
            "missing" => "miss",
            s => s,
        }
    }
    let forms: [(bool, bool); 3] = [(true, false), (false, false), (false, true)];
    for (with_fresh, shorten) in forms {
        let spans: Vec<Span<'static>> = states
            .iter()
            .filter(|s| with_fresh || **s != "fresh")
            .filter_map(|s| counts.get(s).map(|n| (*s, *n)))
            .flat_map(|(s, n)| {
                let label = if shorten { short(s) } else { s };
                [
                    Span::styled(format!("{n} {label}"), state_style(s)),
                    Span::raw("  "),
                ]
            })
            .collect();
        if summary_width(&spans) <= room {
            return spans;
        }
    }
    Vec::new()
}

fn draw_assets(frame: &mut Frame, app: &App, area: Rect) {
    let rows = app.visible_assets();
    let wide = area.width >= 100;
    // Columns as wide as what they hold, so the key gets the rest (at 80 columns a long key is
    // not cut while other columns have room); the time is shortened below 100 columns.
    let fit = |min: usize, max: usize, cells: &mut dyn Iterator<Item = usize>| {
        cells.fold(min, usize::max).min(max) as u16
    };
    let kind_w = fit(4, 10, &mut rows.iter().map(|a| a.kind.chars().count()));
    let state_w = fit(6, 15, &mut rows.iter().map(|a| a.state.chars().count()));
    let rows_w = fit(
        4,
        13,
        &mut rows
            .iter()
            .map(|a| a.rows.map(thousands).unwrap_or_default().len()),
    );
    let time_w = if wide { 19 } else { 11 };
    // When even then the longest key does not fit, the time goes (the asset's detail has it).
    let key_w = rows
        .iter()
        .map(|a| a.key.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let room = area
        .width
        .saturating_sub(2 + 2 + kind_w + state_w + time_w + rows_w + 4);
    let with_time = wide || key_w <= room;
    let mut header = vec!["KEY", "KIND", "STATUS"];
    let mut widths = vec![
        Constraint::Min(20),
        Constraint::Length(kind_w),
        Constraint::Length(state_w),
    ];
    if with_time {
        header.push(if wide { "LAST MATERIALIZED" } else { "UPDATED" });
        widths.push(Constraint::Length(time_w));
    }
    header.push("ROWS");
    widths.push(Constraint::Length(rows_w));
    if wide {
        header.insert(2, "GROUP");
        widths.insert(2, Constraint::Length(12));
        header.push("PARTS");
        widths.push(Constraint::Length(9));
    }
    // Only the rows that fit are built (a 10,000-asset catalog costs a screenful per frame); the
    // window scrolls to keep the selection on screen.
    let height = area.height.saturating_sub(3).max(1) as usize;
    let offset = app.asset_row.saturating_sub(height - 1);
    let body: Vec<Row> = rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|a| asset_cells(a, wide, with_time))
        .collect();
    let title = format!(
        " assets ({}{}) · sorted by {}{} ",
        rows.len(),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!(" of {}, filter '{}'", app.snapshot.assets.len(), app.filter)
        },
        app.sort.label(),
        if app.descending { ", reversed" } else { "" }
    );
    let table = Table::new(body, widths)
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("▶ ");
    let mut state = ratatui::widgets::TableState::default()
        .with_selected((!rows.is_empty()).then_some(app.asset_row - offset));
    frame.render_stateful_widget(table, area, &mut state);
}

fn asset_cells(a: &AssetRow, wide: bool, with_time: bool) -> Row<'static> {
    let mut cells = vec![
        Cell::from(a.key.clone()),
        Cell::from(a.kind.clone()),
        Cell::from(Span::styled(a.state.clone(), state_style(&a.state))),
    ];
    if with_time {
        cells.push(Cell::from(
            a.last
                .as_deref()
                .map(|t| {
                    let t = short_time(t);
                    match wide {
                        true => t,
                        // `12-03 09:15`.
                        false => t.get(5..16).unwrap_or(&t).to_string(),
                    }
                })
                .unwrap_or_else(|| "-".into()),
        ));
    }
    cells.push(Cell::from(
        a.rows.map(thousands).unwrap_or_else(|| "-".into()),
    ));
    if wide {
        cells.insert(2, Cell::from(a.group.clone()));
        cells.push(Cell::from(a.partitions.clone().unwrap_or_default()));
    }
    Row::new(cells)
}

fn draw_runs(frame: &mut Frame, app: &App, area: Rect) {
    // Each id as the shortest prefix (12 characters at least) no other run shown shares: runs a
    // backfill creates in one millisecond differ only further on.
    let ids: Vec<String> = app.snapshot.runs.iter().map(|r| r.id.clone()).collect();
    let id_width = ids
        .iter()
        .map(|id| spine_engine::store::unique_prefix(id, &ids).len())
        .max()
        .unwrap_or(12) as u16;
    let rows: Vec<Row> = app
        .snapshot
        .runs
        .iter()
        .map(|r| {
            let took = match (
                r.started_at.as_deref().and_then(seconds),
                r.finished_at.as_deref().and_then(seconds),
            ) {
                (Some(a), Some(b)) => duration(b - a),
                (Some(_), None) => "…".into(),
                _ => "-".into(),
            };
            let progress = match r.progress {
                Some((done, total)) => {
                    let filled = (done * 5).checked_div(total).unwrap_or(0).min(5);
                    format!(
                        "{}{} {done}/{total}",
                        "▰".repeat(filled),
                        "▱".repeat(5 - filled)
                    )
                }
                None => String::new(),
            };
            Row::new(vec![
                Cell::from(spine_engine::store::unique_prefix(&r.id, &ids).to_string()),
                Cell::from(Span::styled(r.status.clone(), state_style(&r.status))),
                Cell::from(short_time(&r.created_at)),
                Cell::from(took),
                Cell::from(Span::styled(progress, state_style(&r.status))),
                Cell::from(r.selection.clone().unwrap_or_else(|| "(all)".into())),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(id_width),
            Constraint::Length(10),
            Constraint::Length(19),
            Constraint::Length(7),
            Constraint::Length(13),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["RUN", "STATUS", "CREATED", "TOOK", "PROGRESS", "SELECTION"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" runs ({}) ", app.snapshot.runs.len())),
    )
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ");
    let mut state = ratatui::widgets::TableState::default()
        .with_selected((!app.snapshot.runs.is_empty()).then_some(app.run_row));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_bottom(frame: &mut Frame, app: &App, area: Rect) {
    let line = match &app.input {
        Input::Filter => Line::from(vec![
            Span::styled("/", Style::default().fg(Color::Yellow)),
            Span::raw(app.filter.clone()),
            Span::raw("▏"),
        ]),
        Input::Command(t) => Line::from(vec![
            Span::styled(":", Style::default().fg(Color::Yellow)),
            Span::raw(t.clone()),
            Span::raw("▏"),
            // Tab's candidates.
            Span::styled(
                app.message
                    .as_ref()
                    .map(|m| format!("   {m}"))
                    .unwrap_or_default(),
                Style::default().fg(Color::DarkGray),
            ),
        ]),
        Input::None => match &app.message {
            Some(m) => Line::from(Span::styled(m.clone(), Style::default().fg(Color::Yellow))),
            None => {
                let hints: &[(&str, &str)] = match (&app.detail, app.tab) {
                    (Some(Detail::Asset(_)), _) => &[
                        ("esc", "back"),
                        ("m", "materialize"),
                        ("1-4", "views"),
                        ("?", "help"),
                        ("q", "quit"),
                    ],
                    (Some(Detail::Backfill(_)), _) => &[
                        ("esc", "back"),
                        ("j k", "chunk"),
                        ("enter", "open its run"),
                        ("c", "cancel"),
                        ("?", "help"),
                    ],
                    (Some(Detail::Run(_)), _) => &[
                        ("esc", "back"),
                        ("j k", "step"),
                        ("r", "re-run failed"),
                        ("c", "cancel"),
                        ("?", "help"),
                        ("q", "quit"),
                    ],
                    (None, Tab::Assets) => &[
                        ("enter", "open"),
                        ("m", "materialize"),
                        ("/", "filter"),
                        ("s", "sort"),
                        ("?", "help"),
                        ("q", "quit"),
                    ],
                    (None, Tab::Lineage) => &[
                        ("arrows", "follow edges"),
                        ("enter", "center"),
                        ("+ -", "depth"),
                        ("m", "materialize"),
                        ("?", "help"),
                    ],
                    (None, Tab::Runs) => &[
                        ("enter", "open run"),
                        ("r", "re-run failed"),
                        ("c", "cancel"),
                        (":", "jump"),
                        ("?", "help"),
                        ("q", "quit"),
                    ],
                    (None, Tab::Backfills) => &[
                        ("enter", "open"),
                        ("c", "cancel"),
                        ("1-4", "views"),
                        (":", "jump"),
                        ("?", "help"),
                        ("q", "quit"),
                    ],
                };
                Line::from(
                    hints
                        .iter()
                        .flat_map(|(k, v)| {
                            [
                                Span::styled(format!("<{k}>"), Style::default().fg(Color::Cyan)),
                                Span::raw(format!(" {v}  ")),
                            ]
                        })
                        .collect::<Vec<_>>(),
                )
            }
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let w = area.width.min(76);
    // Keys in a column as wide as the longest, meanings wrapped at word boundaries beside them.
    let key_w = KEYS
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let text_w = (w as usize).saturating_sub(2 + key_w).max(10);
    let mut lines: Vec<Line> = Vec::new();
    for (k, v) in KEYS {
        for (i, part) in wrap(v, text_w).into_iter().enumerate() {
            let key = if i == 0 { *k } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{key:<key_w$}"), Style::default().fg(Color::Cyan)),
                Span::raw(part),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (any key closes) "),
        ),
        r,
    );
}
