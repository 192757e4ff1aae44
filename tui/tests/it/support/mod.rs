//! The fixture every rendering test draws: a seven-asset shop with three runs, a failed run's
//! detail, and helpers to drive the app with keys and compare screens with `tests/snapshots/`.
#![allow(dead_code)]

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use spine_tui::app::{App, Effect};
use spine_tui::model::{AssetRow, LogLine, RunDetail, RunRow, Snapshot, StepRow};

pub fn asset(key: &str, kind: &str, state: &str, deps: &[&str], rows: Option<i64>) -> AssetRow {
    AssetRow {
        key: key.into(),
        kind: kind.into(),
        group: key.split('/').next().unwrap_or("default").into(),
        state: state.into(),
        reason: (state == "stale").then(|| "code version changed (1a2b → 3c4d)".into()),
        last: rows.map(|_| "2026-12-03T09:15:02.123Z".into()),
        rows,
        partitions: key.contains("daily").then(|| "29/31".into()),
        deps: deps.iter().map(|d| d.to_string()).collect(),
        description: Some(format!("The {key} table")),
        owners: vec!["data@example.com".into()],
        code_version: "58de1462bbb09100".into(),
    }
}

pub fn fixture() -> App {
    let assets = vec![
        asset("raw/orders", "sql", "fresh", &[], Some(1_000_000)),
        asset("raw/customers", "sql", "fresh", &[], Some(100_000)),
        asset("raw/rates", "source", "fresh", &[], Some(12)),
        asset(
            "staging/orders",
            "sql",
            "stale",
            &["raw/orders", "raw/rates"],
            Some(998_120),
        ),
        asset(
            "marts/daily_revenue",
            "sql",
            "failed",
            &["staging/orders"],
            Some(31),
        ),
        asset(
            "marts/customer_value",
            "sql",
            "upstream-stale",
            &["staging/orders", "raw/customers"],
            Some(100_000),
        ),
        asset(
            "reports/summary",
            "command",
            "missing",
            &["marts/customer_value"],
            None,
        ),
    ];
    let run = |id: &str, status: &str, created: &str, took: Option<&str>| RunRow {
        id: id.into(),
        status: status.into(),
        selection: Some("marts/*".into()),
        created_at: created.into(),
        started_at: Some(created.into()),
        finished_at: took.map(str::to_string),
        progress: (status == "running").then_some((3, 7)),
    };
    let runs = vec![
        run(
            "01a23c7a828d75b195129e6196c2f6cc",
            "running",
            "2026-12-03T09:20:00.000Z",
            None,
        ),
        run(
            "01a23c6f00000000000000000000aaaa",
            "failed",
            "2026-12-03T09:15:00.000Z",
            Some("2026-12-03T09:15:04.500Z"),
        ),
        run(
            "01a23c5e00000000000000000000bbbb",
            "succeeded",
            "2026-12-03T08:00:00.000Z",
            Some("2026-12-03T08:03:10.000Z"),
        ),
    ];
    App::new(Snapshot {
        project: "shop".into(),
        assets,
        runs,
        ..Default::default()
    })
}

pub fn run_detail() -> RunDetail {
    let step = |id: &str, status: &str, a: Option<&str>, b: Option<&str>| StepRow {
        step_id: id.into(),
        status: status.into(),
        attempt: 1,
        started_at: a.map(str::to_string),
        finished_at: b.map(str::to_string),
        message: None,
    };
    RunDetail {
        run: Some(RunRow {
            id: "01a23c6f00000000000000000000aaaa".into(),
            status: "failed".into(),
            selection: Some("marts/*".into()),
            created_at: "2026-12-03T09:15:00.000Z".into(),
            started_at: Some("2026-12-03T09:15:00.000Z".into()),
            finished_at: Some("2026-12-03T09:15:04.000Z".into()),
            progress: None,
        }),
        steps: vec![
            step(
                "staging/orders",
                "succeeded",
                Some("2026-12-03T09:15:00.000Z"),
                Some("2026-12-03T09:15:02.000Z"),
            ),
            step(
                "marts/customer_value",
                "succeeded",
                Some("2026-12-03T09:15:02.000Z"),
                Some("2026-12-03T09:15:03.000Z"),
            ),
            step(
                "marts/daily_revenue",
                "failed",
                Some("2026-12-03T09:15:02.000Z"),
                Some("2026-12-03T09:15:04.000Z"),
            ),
            step("reports/summary", "skipped", None, None),
        ],
        log: (1..=6)
            .map(|i| LogLine {
                id: i,
                ts: format!("2026-12-03T09:15:0{}.000Z", i - 1),
                step: None,
                message: format!("event {i}: something happened"),
            })
            .collect(),
    }
}

pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| spine_tui::view::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn golden(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    match std::fs::read_to_string(&path) {
        Ok(want) if !update => {
            assert_eq!(got, want, "screen {name} differs from {}", path.display())
        }
        _ => {
            std::fs::write(&path, got).unwrap();
            assert!(
                update,
                "wrote a new snapshot {}: review it and run again",
                path.display()
            );
        }
    }
}

pub fn key(app: &mut App, code: KeyCode) -> Option<Effect> {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}
