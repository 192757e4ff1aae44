//! The Backfills view (each backfill's progress as a bar of committed, failed and remaining step
//! keys; the project's schedules with their next and latest ticks) and the overlay asking to confirm
//! an action.

use crate::actions::Confirm;
use crate::app::App;
use crate::style::{state_style, wall_time};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// `██████░░░░` of `width` cells: committed in green, failed in red, the rest dim.
fn progress(done: usize, failed: usize, total: usize, width: usize) -> Line<'static> {
    let total = total.max(1);
    let cells = |n: usize| (n * width).div_ceil(total).min(width);
    let ok = cells(done);
    let bad = cells(failed).min(width - ok);
    Line::from(vec![
        Span::styled("█".repeat(ok), Style::default().fg(Color::Green)),
        Span::styled("█".repeat(bad), Style::default().fg(Color::Red)),
        Span::styled(
            "░".repeat(width - ok - bad),
            Style::default().fg(Color::DarkGray),
        ),
    ])
}

pub(crate) fn draw_backfills(frame: &mut Frame, app: &App, area: Rect) {
    let s = &app.snapshot;
    let sched_h = (s.schedules.len() as u16 + 3)
        .max(4)
        .min((area.height / 2).max(1));
    let [top, bottom] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(sched_h)]).areas(area);
    let bar_w = 20usize.min(top.width.saturating_sub(60) as usize).max(5);
    let rows: Vec<Row> = s
        .backfills
        .iter()
        .map(|b| {
            Row::new(vec![
                Cell::from(b.id.chars().take(12).collect::<String>()),
                Cell::from(Span::styled(b.state.clone(), state_style(&b.state))),
                Cell::from(progress(b.done, b.failed, b.total, bar_w)),
                Cell::from(format!("{}/{}", b.done, b.total)),
                Cell::from(b.failed.to_string()),
                Cell::from(b.partitions.clone()),
                Cell::from(b.selection.clone()),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(bar_w as u16),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(22),
            Constraint::Min(6),
        ],
    )
    .header(
        Row::new([
            "BACKFILL",
            "STATE",
            "PROGRESS",
            "DONE",
            "FAILED",
            "PARTITIONS",
            "SELECTION",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" backfills ({}) ", s.backfills.len())),
    )
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    if s.backfills.is_empty() {
        frame.render_widget(
            Paragraph::new("no backfills: `assets backfill SELECTION --from A --to B` starts one")
                .block(Block::default().borders(Borders::ALL).title(" backfills ")),
            top,
        );
    } else {
        let mut state =
            ratatui::widgets::TableState::default().with_selected(Some(app.backfill_row));
        frame.render_stateful_widget(table, top, &mut state);
    }
    let rows: Vec<Row> = s
        .schedules
        .iter()
        .map(|t| {
            Row::new(vec![
                Cell::from(t.name.clone()),
                Cell::from(t.cron.clone()),
                Cell::from(t.next.as_deref().map(wall_time).unwrap_or("-".into())),
                Cell::from(t.last.as_deref().map(wall_time).unwrap_or("-".into())),
                Cell::from(t.selection.clone()),
            ])
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" schedules ({}) ", s.schedules.len()));
    let widest = |f: &dyn Fn(&crate::model::ScheduleRow) -> usize, min: usize, max: usize| {
        s.schedules.iter().map(f).fold(min, usize::max).min(max) as u16
    };
    let name_w = widest(&|t| t.name.chars().count(), 8, 24);
    let cron_w = widest(&|t| t.cron.chars().count(), 4, 32);
    if s.schedules.is_empty() {
        frame.render_widget(
            Paragraph::new("no schedules: declare them in schedules.yaml").block(block),
            bottom,
        );
        return;
    }
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(name_w),
                Constraint::Length(cron_w),
                Constraint::Length(23),
                Constraint::Length(23),
                Constraint::Min(6),
            ],
        )
        .header(
            Row::new(["SCHEDULE", "CRON", "NEXT TICK", "LATEST TICK", "SELECTION"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(block),
        bottom,
    );
}

/// The question of `confirm`, centered, with its answers.
pub(crate) fn draw_confirm(frame: &mut Frame, confirm: &Confirm, area: Rect) {
    let (question, answers) = confirm.question();
    let w = area.width.min(64);
    let inner = w.saturating_sub(2).max(1) as usize;
    let text_h = question.len().div_ceil(inner) as u16 + 1;
    let h = (text_h + answers.len() as u16 + 3).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let mut lines = vec![Line::from(question), Line::from("")];
    for (k, v) in answers {
        lines.push(Line::from(vec![
            Span::styled(format!("  {k}  "), Style::default().fg(Color::Cyan)),
            Span::raw(v),
        ]));
    }
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::default().fg(Color::Yellow))
                .title(" confirm "),
        ),
        r,
    );
}
