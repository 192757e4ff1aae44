//! Actions from the keyboard (materialize, re-run from failure, cancel), each confirmed first and
//! refused with a sentence where it does not apply; the Backfills view; and the lineage drawn as
//! boxes and edges. Screens are compared with `tests/snapshots/` as in `render.rs`.

use crate::support::*;
use ratatui::crossterm::event::KeyCode;
use spine_tui::actions::Confirm;
use spine_tui::app::{Detail, Effect, Tab};
use spine_tui::model::{BackfillRow, ScheduleRow};

const RUNNING: &str = "01a23c7a828d75b195129e6196c2f6cc";
const FAILED: &str = "01a23c6f00000000000000000000aaaa";

#[test]
fn materialize_asks_first_and_can_take_the_downstream() {
    let mut app = fixture();
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(key(&mut app, KeyCode::Char('m')), None);
    assert_eq!(
        app.confirm,
        Some(Confirm::Materialize {
            key: "staging/orders".into(),
            downstream: 3
        })
    );
    golden("confirm_materialize_80x24", &screen(&app, 80, 24));
    // Anything but yes drops it.
    assert_eq!(key(&mut app, KeyCode::Char('n')), None);
    assert_eq!(app.confirm, None);
    assert!(screen(&app, 80, 24).contains("nothing done"));
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(
        key(&mut app, KeyCode::Char('d')),
        Some(Effect::Materialize("staging/orders+".into()))
    );
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(Effect::Materialize("staging/orders".into()))
    );
    // A leaf has no downstream: `d` is not offered and does nothing.
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('m'));
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("Materialize reports/summary?") && !s.contains("downstream"),
        "{s}"
    );
    assert_eq!(key(&mut app, KeyCode::Char('d')), None);
    // In Lineage, the asset selected there.
    key(&mut app, KeyCode::Char('g'));
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Right);
    let sel = app.lineage_selected().unwrap();
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(Effect::Materialize(sel))
    );
}

#[test]
fn rerun_and_cancel_apply_only_to_runs_they_fit() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('3'));
    // The first run is running: no re-run, but it can be cancelled.
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.confirm, None);
    assert!(screen(&app, 100, 24).contains("only a failed or cancelled run"));
    key(&mut app, KeyCode::Char('c'));
    assert!(matches!(&app.confirm, Some(Confirm::Cancel { run, .. }) if run == RUNNING));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(Effect::Cancel(RUNNING.into()))
    );
    // The failed one has ended: re-run, not cancel.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.confirm, None);
    assert!(screen(&app, 100, 24).contains("has ended (failed)"));
    key(&mut app, KeyCode::Char('r'));
    golden("confirm_rerun_80x24", &screen(&app, 80, 24));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        Some(Effect::Rerun(FAILED.into()))
    );
    // From the run's own detail too.
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadRun(FAILED.into()))
    );
    app.set_run(run_detail());
    key(&mut app, KeyCode::Char('r'));
    assert!(
        matches!(&app.confirm, Some(Confirm::Rerun { run, status }) if run == FAILED && status == "failed")
    );
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.confirm, None);
    // A run started from the UI is shown at once: Runs, its detail open.
    key(&mut app, KeyCode::Char('1'));
    assert_eq!(app.open_run(RUNNING), Effect::LoadRun(RUNNING.into()));
    assert_eq!(app.tab, Tab::Runs);
    assert_eq!(app.detail, Some(Detail::Run(RUNNING.into())));
    assert_eq!(app.selected_run().map(|r| r.id.as_str()), Some(RUNNING));
}

#[test]
fn backfills_view_shows_progress_and_schedules() {
    let mut app = fixture();
    let mut snapshot = app.snapshot.clone();
    snapshot.backfills = vec![
        BackfillRow {
            id: "bf01a23c7a828d75".into(),
            selection: "marts/daily_revenue".into(),
            partitions: "2026-11-01..2026-11-30".into(),
            state: "running".into(),
            done: 18,
            failed: 2,
            total: 30,
            runs: 6,
            created_at: "2026-12-03T09:00:00.000Z".into(),
        },
        BackfillRow {
            id: "bf01a23b00000000".into(),
            selection: "*".into(),
            partitions: "all".into(),
            state: "succeeded".into(),
            done: 12,
            failed: 0,
            total: 12,
            runs: 2,
            created_at: "2026-12-02T09:00:00.000Z".into(),
        },
    ];
    snapshot.schedules = vec![ScheduleRow {
        name: "nightly".into(),
        cron: "0 2 * * * (Europe/Berlin)".into(),
        selection: "marts/*".into(),
        next: Some("2026-12-04T02:00:00+01:00".into()),
        last: Some("2026-12-03T02:00:00+00:00".into()),
    }];
    app.set_snapshot(snapshot);
    key(&mut app, KeyCode::Char('4'));
    assert_eq!(app.tab, Tab::Backfills);
    let s = screen(&app, 100, 24);
    golden("backfills_100x24", &s);
    assert!(
        s.contains("18/30") && s.contains("2026-12-04 02:00 +01:00"),
        "{s}"
    );
    let narrow = screen(&app, 80, 24);
    assert!(
        narrow.contains("nightly") && narrow.contains("running"),
        "{narrow}"
    );
    // With none, it says how to start one.
    let empty = fixture();
    let mut empty = empty;
    key(&mut empty, KeyCode::Char('4'));
    assert!(screen(&empty, 80, 24).contains("assets backfill"));
}

#[test]
fn lineage_is_boxes_joined_by_edges() {
    let mut app = fixture();
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Char('2'));
    let s = screen(&app, 80, 24);
    golden("lineage_80x24", &s);
    // The selected box is double-lined; edges end in arrows at their reader's box.
    assert!(s.contains('╔') && s.contains('▶'), "{s}");
    // Two upstreams feed the selected asset: a junction where their edges meet.
    assert!(
        s.contains('┬') || s.contains('┴') || s.contains('┤') || s.contains('├'),
        "{s}"
    );
}
