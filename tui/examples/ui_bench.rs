//! How fast the UI opens and draws, on a real project: the time from opening the engine to the
//! first frame (the project's assets) and to the frame with freshness and runs, then the median and
//! worst time of drawing a frame of each view, into an off-screen 200×50 buffer (what a terminal
//! frame costs minus the terminal's own writes). Run by `bench/ui.sh`.
//!
//! Usage: `ui_bench <project dir> [frames]`; prints JSON.

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: ui_bench <project dir> [frames]")?;
    let frames: usize = args.get(2).map(|f| f.parse()).transpose()?.unwrap_or(200);
    let started = Instant::now();
    let engine = spine_engine::Engine::load(
        std::path::Path::new(dir),
        spine_engine::kinds::KindRegistry::builtin(),
    )
    .await?;
    let opened = started.elapsed();
    // As `assets ui` does: the project's assets at once, then freshness and runs from the store.
    let mut app = spine_tui::App::new(spine_tui::model::skeleton(&engine));
    let mut terminal = Terminal::new(TestBackend::new(200, 50))?;
    terminal.draw(|f| spine_tui::view::draw(f, &app))?;
    let first = started.elapsed();
    app.set_snapshot(spine_tui::model::load(&engine, 200).await?);
    terminal.draw(|f| spine_tui::view::draw(f, &app))?;
    let loaded = started.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let mut out = serde_json::Map::new();
    out.insert("assets".into(), app.snapshot.assets.len().into());
    out.insert("open_ms".into(), (opened.as_secs_f64() * 1000.0).into());
    out.insert(
        "first_frame_ms".into(),
        (first.as_secs_f64() * 1000.0).into(),
    );
    out.insert("with_freshness_ms".into(), ms(loaded).into());
    for (tab, name) in [('1', "assets"), ('2', "lineage"), ('3', "runs")] {
        app.on_key(KeyEvent::new(KeyCode::Char(tab), KeyModifiers::NONE));
        let mut times = Vec::with_capacity(frames);
        for _ in 0..frames {
            let t = Instant::now();
            terminal.draw(|f| spine_tui::view::draw(f, &app))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        out.insert(
            format!("{name}_frame_median_ms"),
            times[times.len() / 2].into(),
        );
        out.insert(
            format!("{name}_frame_max_ms"),
            times[times.len() - 1].into(),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    engine.store().close().await;
    Ok(())
}
