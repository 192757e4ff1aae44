//! The drill-downs and conveniences of issue 27's UI items: a run's step picked to see its error and
//! its own log lines; a backfill opened from the Backfills tab (its chunks, their runs, its failed
//! partitions) and cancelled from there; `:` completing views and asset keys with tab; the help
//! overlay wrapping between words; long keys shown whole at 80 columns.

use crate::support::*;
use ratatui::crossterm::event::KeyCode;
use spine_tui::actions::Confirm;
use spine_tui::app::{Detail, Effect, Input, Tab};
use spine_tui::backfill::{BackfillDetail, ChunkRow};
use spine_tui::model::{BackfillRow, LogLine};

const FAILED: &str = "01a23c6f00000000000000000000aaaa";

#[test]
fn a_picked_step_shows_its_error_and_its_own_log_lines() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('3'));
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadRun(FAILED.into()))
    );
    let mut detail = run_detail();
    detail.steps[2].message =
        Some("Arrow error: Cast error: Cannot cast string 'x' to value of type Int32".into());
    detail.log.push(LogLine {
        id: 7,
        ts: "2026-12-03T09:15:04.000Z".into(),
        step: Some("marts/daily_revenue".into()),
        message: "marts/daily_revenue failed (permanent, attempt 1)".into(),
    });
    app.set_run(detail);
    // j picks the first step, then the third: the failed one.
    for _ in 0..3 {
        assert_eq!(key(&mut app, KeyCode::Char('j')), None);
    }
    assert_eq!(app.run_step, Some(2));
    let s = screen(&app, 100, 30);
    assert!(
        s.contains("marts/daily_revenue · failed · attempt 1"),
        "{s}"
    );
    assert!(
        s.contains("Cannot cast string 'x' to value of type Int32"),
        "{s}"
    );
    assert!(s.contains("failed (permanent, attempt 1)"), "{s}");
    assert!(
        !s.contains("event 1: something happened"),
        "other steps' lines are left out: {s}"
    );
    golden("run_step_100x30", &s);
    // Esc: all lines again, the run still open; esc again closes it.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.run_step, None);
    assert_eq!(app.detail, Some(Detail::Run(FAILED.into())));
    assert!(screen(&app, 100, 30).contains("event 1: something happened"));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.detail, None);
}

fn with_backfills() -> spine_tui::app::App {
    let mut app = fixture();
    let mut snapshot = app.snapshot.clone();
    let row = |id: &str, state: &str| BackfillRow {
        id: id.into(),
        selection: "marts/daily_revenue".into(),
        partitions: "2026-11-01..2026-11-30".into(),
        state: state.into(),
        done: 18,
        failed: 2,
        total: 30,
        runs: 3,
        created_at: "2026-12-03T09:00:00.000Z".into(),
    };
    snapshot.backfills = vec![
        row("bf01a23c7a828d75", "succeeded"),
        row("bf01a23b00000000", "running"),
    ];
    app.set_snapshot(snapshot);
    key(&mut app, KeyCode::Char('4'));
    app
}

#[test]
fn a_backfill_opens_to_its_runs_and_failures_and_is_cancelled_from_its_tab() {
    let mut app = with_backfills();
    // The first has ended: nothing to cancel.
    assert_eq!(key(&mut app, KeyCode::Char('c')), None);
    assert!(app
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("nothing to cancel"));
    // The second is running: asked, then cancelled.
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.backfill_row, 1);
    key(&mut app, KeyCode::Char('c'));
    assert!(matches!(app.confirm, Some(Confirm::CancelBackfill { .. })));
    assert!(screen(&app, 80, 24).contains("Cancel backfill bf01a23b0000"));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(Effect::CancelBackfill("bf01a23b00000000".into()))
    );
    // Enter opens it: its chunks, their runs, its failed partitions.
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadBackfill("bf01a23b00000000".into()))
    );
    let chunk = |n: i64, run: &str, status: &str, failed: usize| ChunkRow {
        chunk: n,
        run_id: run.into(),
        run_status: status.into(),
        runs: 1,
        steps: (10, 10 - failed, failed, 0),
        range: format!("2026-11-{:02}..2026-11-{:02}", n * 10 + 1, n * 10 + 10),
    };
    app.set_backfill(BackfillDetail {
        id: "bf01a23b00000000".into(),
        state: "running".into(),
        created_at: "2026-12-03T09:00:00.000Z".into(),
        chunks: vec![
            chunk(0, "01a23c5e00000000000000000000bbbb", "succeeded", 0),
            chunk(1, FAILED, "failed", 2),
            chunk(2, "01a23c7a828d75b195129e6196c2f6cc", "running", 0),
        ],
        failures: vec![(
            "marts/daily_revenue[2026-11-14]".into(),
            "Cast error: Cannot cast string 'x'".into(),
        )],
    });
    let s = screen(&app, 100, 24);
    golden("backfill_detail_100x24", &s);
    assert!(
        s.contains("2026-11-11..2026-11-20") && s.contains("2 failed"),
        "{s}"
    );
    assert!(
        s.contains("marts/daily_revenue[2026-11-14]") && s.contains("Cannot cast"),
        "{s}"
    );
    // j picks the failed chunk; enter opens its run.
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadRun(FAILED.into()))
    );
    assert_eq!(app.tab, Tab::Runs);
    assert_eq!(app.detail, Some(Detail::Run(FAILED.into())));
}

#[test]
fn colon_completes_views_and_keys_with_tab() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "ma");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input, Input::Command("marts/".into()));
    let s = screen(&app, 100, 24);
    assert!(
        s.contains("marts/customer_value") && s.contains("marts/daily_revenue"),
        "the candidates: {s}"
    );
    typed(&mut app, "d");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input, Input::Command("marts/daily_revenue".into()));
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadAsset("marts/daily_revenue".into()))
    );
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "ba");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input, Input::Command("backfills".into()));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Backfills);
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "zz");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.input, Input::Command("zz".into()));
    assert!(screen(&app, 80, 24).contains("no view or asset starts with 'zz'"));
}

#[test]
fn the_help_wraps_between_words_and_cuts_none() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('?'));
    for (w, h) in [(80, 30), (60, 40)] {
        let s = screen(&app, w, h);
        let text: String = s
            .lines()
            .map(|l| l.trim_matches(|c: char| c == '│' || c.is_whitespace()))
            .collect::<Vec<_>>()
            .join(" ");
        for (k, v) in spine_tui::app::KEYS {
            for word in v.split_whitespace() {
                assert!(
                    text.split_whitespace().any(|t| t.contains(word)),
                    "{w}x{h}: '{word}' of '{k}' is cut: {s}"
                );
            }
        }
        assert!(!s.contains("tabswitch"), "{s}");
    }
}

#[test]
fn long_keys_are_whole_at_80_columns() {
    let mut app = fixture();
    let mut snapshot = app.snapshot.clone();
    snapshot.assets.push(asset(
        "marts/orders_by_day_and_region_v2",
        "sql",
        "fresh",
        &["raw/orders"],
        Some(5),
    ));
    app.set_snapshot(snapshot);
    let s = screen(&app, 80, 24);
    assert!(s.contains("marts/orders_by_day_and_region_v2"), "{s}");
}
