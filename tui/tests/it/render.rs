//! Every view drawn from a fixture into ratatui's `TestBackend`, at 80×24 and 120×32, compared with
//! the screens in `tests/snapshots/` (written when missing or with UPDATE_SNAPSHOTS=1; review the
//! diff). Keys drive the app as a user would.

use crate::support::*;
use ratatui::crossterm::event::KeyCode;
use spine_tui::app::{Effect, Tab};
use spine_tui::model::{AssetDetail, Version};

#[test]
fn assets_view_at_80_and_120_columns() {
    let app = fixture();
    golden("assets_80x24", &screen(&app, 80, 24));
    golden("assets_120x32", &screen(&app, 120, 32));
}

#[test]
fn filtering_and_sorting_the_catalog() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "mart");
    let s = screen(&app, 80, 24);
    assert!(s.contains("/mart"), "{s}");
    assert_eq!(app.visible_assets().len(), 2);
    key(&mut app, KeyCode::Enter);
    // Sorted by key, reversed.
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char('S'));
    let keys: Vec<&str> = app
        .visible_assets()
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert_eq!(keys, ["marts/daily_revenue", "marts/customer_value"]);
    golden("assets_filtered_80x24", &screen(&app, 80, 24));
    // Esc clears the filter.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_assets().len(), 7);
}

#[test]
fn opening_an_asset_asks_for_its_history_and_draws_it() {
    let mut app = fixture();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        Some(Effect::LoadAsset("staging/orders".into()))
    );
    app.set_asset(AssetDetail {
        key: "staging/orders".into(),
        history: (0..5)
            .rev()
            .map(|v| Version {
                delta_version: v,
                partition: None,
                rows: 990_000 + v * 2_000,
                created_at: format!("2026-12-0{}T09:15:02.123Z", v + 1),
                run_id: format!("01a23c6f0000000000000000000{v}aaaa"),
                published: v != 3,
                reads: vec![format!("raw/orders@{v}"), "raw/rates (observed)".into()],
            })
            .collect(),
        checks: vec![("not_null(order_id)".into(), true, "error".into())],
    });
    golden("asset_detail_100x30", &screen(&app, 100, 30));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.detail, None);
}

#[test]
fn runs_view_and_a_run_timeline() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab, Tab::Runs);
    golden("runs_80x24", &screen(&app, 80, 24));
    key(&mut app, KeyCode::Down);
    let effect = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effect,
        Some(Effect::LoadRun("01a23c6f00000000000000000000aaaa".into()))
    );
    app.set_run(run_detail());
    let s = screen(&app, 100, 30);
    golden("run_detail_100x30", &s);
    // The failed step's bar starts half-way through the run and ends with it.
    let bar = s
        .lines()
        .find(|l| l.contains("marts/daily_revenue"))
        .unwrap();
    assert!(bar.contains("4.0s") || bar.contains("2.0s"), "{bar}");
    golden("run_detail_80x24", &screen(&app, 80, 24));
}

#[test]
fn lineage_moves_along_edges_and_changes_depth() {
    let mut app = fixture();
    // Center on staging/orders (the Assets selection) and open Lineage.
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.lineage_selected().as_deref(), Some("staging/orders"));
    golden("lineage_100x24", &screen(&app, 100, 24));
    // Left follows an edge upstream; right twice goes downstream of the center.
    key(&mut app, KeyCode::Left);
    assert_eq!(app.lineage_selected().as_deref(), Some("raw/orders"));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    assert_eq!(
        app.lineage_selected().as_deref(),
        Some("marts/customer_value")
    );
    // Enter recenters; depth 1 shows one layer each way.
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('-'));
    assert_eq!(app.lineage.depth, 1);
    let s = screen(&app, 100, 24);
    assert!(
        s.contains("reports/summary") && !s.contains("raw/orders"),
        "{s}"
    );
    // Jump by name.
    key(&mut app, KeyCode::Char(':'));
    typed(&mut app, "raw/rates");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.lineage_selected().as_deref(), Some("raw/rates"));
}

#[test]
fn help_lists_every_key_and_any_key_closes_it() {
    let mut app = fixture();
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&app, 80, 24);
    for (k, _) in spine_tui::app::KEYS {
        assert!(s.contains(k), "help lacks {k}:\n{s}");
    }
    golden("help_80x24", &s);
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);
    assert_eq!(key(&mut app, KeyCode::Char('q')), Some(Effect::Quit));
}

#[test]
fn a_tiny_terminal_still_draws() {
    let mut app = fixture();
    for tab in ['1', '2', '3', '4'] {
        key(&mut app, KeyCode::Char(tab));
        let s = screen(&app, 30, 6);
        assert!(s.contains("spine"), "{s}");
    }
}
