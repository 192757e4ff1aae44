//! The drill-downs: a run (its steps on a timeline above its log) and an asset (what it is, its
//! checks, and its materializations with a sparkline of rows).

use crate::app::{App, Detail};
use crate::model::step_counts;
use crate::style::{duration, seconds, short_time, state_style, thousands};
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, Wrap};
use ratatui::Frame;

impl App {
    /// Keys of the open run: `j`/`k` (arrows) pick a step, whose error and log lines the log pane
    /// then shows; esc goes back to all of them before it closes the run. False for other keys.
    pub(crate) fn step_key(&mut self, code: KeyCode) -> bool {
        if !matches!(self.detail, Some(Detail::Run(_))) {
            return false;
        }
        let n = self.run.steps.len();
        match (code, self.run_step) {
            (KeyCode::Down | KeyCode::Char('j'), None) if n > 0 => self.run_step = Some(0),
            (KeyCode::Down | KeyCode::Char('j'), Some(i)) => {
                self.run_step = Some((i + 1).min(n.saturating_sub(1)))
            }
            (KeyCode::Up | KeyCode::Char('k'), Some(i)) => {
                self.run_step = Some(i.saturating_sub(1))
            }
            (KeyCode::Esc, Some(_)) => self.run_step = None,
            _ => return false,
        }
        true
    }
}

/// A run: its steps as a timeline (a bar from each step's start to its end on the run's time axis)
/// above its log.
pub(crate) fn draw_run(frame: &mut Frame, app: &App, area: Rect) {
    let d = &app.run;
    let Some(run) = &d.run else {
        frame.render_widget(
            Paragraph::new("loading…").block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let [steps_area, log_area] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    // The time axis: from the run's start to its end, or to the newest time seen while it runs.
    let starts = d
        .steps
        .iter()
        .filter_map(|s| s.started_at.as_deref().and_then(seconds));
    let ends = d
        .steps
        .iter()
        .filter_map(|s| s.finished_at.as_deref().and_then(seconds));
    let logs = d.log.iter().filter_map(|l| seconds(&l.ts));
    let t0 = run
        .started_at
        .as_deref()
        .and_then(seconds)
        .into_iter()
        .chain(starts.clone())
        .fold(f64::INFINITY, f64::min);
    let t1 = run
        .finished_at
        .as_deref()
        .and_then(seconds)
        .into_iter()
        .chain(ends)
        .chain(logs)
        .chain(starts)
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (t1 - t0).max(0.001);
    let name_w = d
        .steps
        .iter()
        .map(|s| s.step_id.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 32) as u16;
    let bar_w = steps_area.width.saturating_sub(name_w + 10 + 8 + 7).max(8) as usize;
    let rows: Vec<Row> = d
        .steps
        .iter()
        .map(|s| {
            let a = s.started_at.as_deref().and_then(seconds);
            let b = s.finished_at.as_deref().and_then(seconds).or(a.map(|_| t1));
            let (bar, took) = match (a, b) {
                (Some(a), Some(b)) if t0.is_finite() => {
                    let from = (((a - t0) / span) * bar_w as f64).floor() as usize;
                    let to = ((((b - t0) / span) * bar_w as f64).ceil() as usize)
                        .clamp(from + 1, bar_w.max(from + 1));
                    let mut bar = " ".repeat(from.min(bar_w));
                    bar.push_str(&"█".repeat(to.saturating_sub(from)));
                    (bar, duration(b - a))
                }
                _ => (String::new(), "-".into()),
            };
            Row::new(vec![
                Cell::from(s.step_id.clone()),
                Cell::from(Span::styled(s.status.clone(), state_style(&s.status))),
                Cell::from(took),
                Cell::from(Span::styled(bar, state_style(&s.status))),
            ])
        })
        .collect();
    let counts = step_counts(&d.steps);
    let mut summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    summary.sort();
    let title = format!(
        " run {} · {} · {} steps: {} ",
        run.id.chars().take(12).collect::<String>(),
        run.status,
        d.steps.len(),
        summary.join(", ")
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(name_w),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Min(8),
        ],
    )
    .header(
        Row::new(["STEP", "STATUS", "TOOK", "TIMELINE"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::default().borders(Borders::ALL).title(title))
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ");
    let picked = app.run_step.and_then(|i| d.steps.get(i));
    let mut state = ratatui::widgets::TableState::default().with_selected(picked.and(app.run_step));
    frame.render_stateful_widget(table, steps_area, &mut state);
    let height = log_area.height.saturating_sub(2) as usize;
    // A picked step: its error (or why it was skipped) first, then its own log lines.
    let mut head: Vec<Line> = Vec::new();
    if let Some(s) = picked {
        if let Some(m) = &s.message {
            let width = log_area.width.saturating_sub(2).max(10) as usize;
            for part in crate::style::wrap(m, width) {
                let style = state_style(&s.status);
                head.push(Line::from(Span::styled(part, style)));
            }
        }
    }
    let own: Vec<&crate::model::LogLine> = d
        .log
        .iter()
        .filter(|l| picked.is_none_or(|s| l.step.as_deref() == Some(s.step_id.as_str())))
        .collect();
    let room = height.saturating_sub(head.len());
    let lines: Vec<Line> = own
        .iter()
        .rev()
        .take(room)
        .rev()
        .map(|l| {
            Line::from(vec![
                Span::styled(
                    short_time(&l.ts).get(11..).unwrap_or_default().to_string(),
                    Style::default().fg(Color::DarkGray),
                ),
                Span::raw(" "),
                Span::raw(l.message.clone()),
            ])
        })
        .collect();
    let title = match picked {
        Some(s) => format!(
            " {} · {} · attempt {} · {} event(s) (esc: all) ",
            s.step_id,
            s.status,
            s.attempt,
            own.len()
        ),
        None => format!(" log ({} events) · j k: pick a step ", d.log.len()),
    };
    head.extend(lines);
    frame.render_widget(
        Paragraph::new(head).block(Block::default().borders(Borders::ALL).title(title)),
        log_area,
    );
}

pub(crate) fn draw_asset(frame: &mut Frame, app: &App, area: Rect) {
    let Some(Detail::Asset(key)) = &app.detail else {
        return;
    };
    let Some(a) = app.snapshot.assets.iter().find(|a| &a.key == key) else {
        return;
    };
    let [info, spark, hist] = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Min(3),
    ])
    .areas(area);
    let label = |s: &str| {
        Span::styled(
            format!("{s:<13}"),
            Style::default().add_modifier(Modifier::BOLD),
        )
    };
    let checks = if app.asset.checks.is_empty() {
        "-".to_string()
    } else {
        app.asset
            .checks
            .iter()
            .map(|(n, ok, sev)| format!("{n} {} ({sev})", if *ok { "passed" } else { "FAILED" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = vec![
        Line::from(vec![
            label("description"),
            Span::raw(a.description.clone().unwrap_or_else(|| "-".into())),
        ]),
        Line::from(vec![
            label("kind · group"),
            Span::raw(format!("{} · {}", a.kind, a.group)),
        ]),
        Line::from(vec![
            label("owners"),
            Span::raw(if a.owners.is_empty() {
                "-".into()
            } else {
                a.owners.join(", ")
            }),
        ]),
        Line::from(vec![
            label("code version"),
            Span::raw(a.code_version.clone()),
        ]),
        Line::from(vec![
            label("status"),
            Span::styled(a.state.clone(), state_style(&a.state)),
            Span::raw(
                a.reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default(),
            ),
        ]),
        Line::from(vec![
            label("upstream"),
            Span::raw(if a.deps.is_empty() {
                "-".into()
            } else {
                a.deps.join(", ")
            }),
        ]),
        Line::from(vec![label("checks"), Span::raw(checks)]),
    ];
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::LEFT | Borders::RIGHT | Borders::TOP)
                .title(format!(" {key} ")),
        ),
        info,
    );
    let rows: Vec<u64> = app
        .asset
        .history
        .iter()
        .rev()
        .map(|v| v.rows.max(0) as u64)
        .collect();
    frame.render_widget(
        Sparkline::default()
            .data(&rows)
            .style(Style::default().fg(Color::Cyan))
            .block(
                Block::default()
                    .borders(Borders::LEFT | Borders::RIGHT)
                    .title(" rows per materialization (oldest → newest) "),
            ),
        spark,
    );
    let table_rows: Vec<Row> = app
        .asset
        .history
        .iter()
        .map(|v| {
            Row::new(vec![
                Cell::from(v.delta_version.to_string()),
                Cell::from(v.partition.clone().unwrap_or_default()),
                Cell::from(thousands(v.rows)),
                Cell::from(short_time(&v.created_at)),
                Cell::from(v.run_id.chars().take(12).collect::<String>()),
                Cell::from(if v.published { "yes" } else { "held back" }),
                Cell::from(v.reads.join(", ")),
            ])
        })
        .collect();
    frame.render_widget(
        Table::new(
            table_rows,
            [
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(19),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new([
                "VERSION",
                "PARTITION",
                "ROWS",
                "RECORDED",
                "RUN",
                "PUBLISHED",
                "READ",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" materializations ({}) ", app.asset.history.len())),
        ),
        hist,
    );
}
