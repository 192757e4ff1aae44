//! How fast the UI opens and draws, on a real project: the time from opening the engine to the
//! first frame (the project's assets) and to the frame with freshness and runs, then the median and
//! worst time of drawing a frame of each view, into an off-screen 200×50 buffer (what a terminal
//! frame costs minus the terminal's own writes). With an `assets` binary as third argument it then
//! starts `assets materialize --force` of the first three layers in a process of its own and, while
//! that run executes, does what `assets ui` does with the run open: a frame every 100 ms, the run's
//! new events every 500 ms; it reports the frame and poll times. Run by `bench/ui.sh`.
//!
//! Usage: `ui_bench <project dir> [frames] [assets binary]`; prints JSON.

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
    for (tab, name) in [
        ('1', "assets"),
        ('2', "lineage"),
        ('3', "runs"),
        ('4', "backfills"),
    ] {
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
    if let Some(bin) = args.get(3) {
        live(&engine, &mut app, &mut terminal, dir, bin, &mut out).await?;
    }
    println!("{}", serde_json::Value::Object(out));
    engine.store().close().await;
    Ok(())
}

/// Frames and polls of an open run while it executes in another process.
async fn live(
    engine: &spine_engine::Engine,
    app: &mut spine_tui::App,
    terminal: &mut Terminal<TestBackend>,
    dir: &str,
    bin: &str,
    out: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = engine.store().list_runs(1).await?;
    let mut child = std::process::Command::new(bin)
        .args([
            "--project",
            dir,
            "materialize",
            "--force",
            "-c",
            "2",
            "l0/* l1/* l2/*",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Its run, once recorded.
    let run_id = loop {
        let runs = engine.store().list_runs(1).await?;
        match runs.first() {
            Some(r) if before.first().map(|b| &b.run_id) != Some(&r.run_id) => {
                break r.run_id.clone()
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let effect = app.open_run(run_id.as_str());
    assert_eq!(
        effect,
        spine_tui::Effect::LoadRun(run_id.as_str().to_string())
    );
    let (mut frames, mut polls) = (Vec::new(), Vec::new());
    let mut detail = spine_tui::model::RunDetail::default();
    let mut last_poll = Instant::now() - std::time::Duration::from_secs(1);
    while child.try_wait()?.is_none() {
        if last_poll.elapsed() >= std::time::Duration::from_millis(500) {
            last_poll = Instant::now();
            let t = Instant::now();
            detail.load(engine, run_id.as_str()).await?;
            app.set_run(detail.clone());
            polls.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let t = Instant::now();
        terminal.draw(|f| spine_tui::view::draw(f, app))?;
        frames.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    detail.load(engine, run_id.as_str()).await?;
    let stat = |v: &mut Vec<f64>| -> (f64, f64) {
        v.sort_by(f64::total_cmp);
        (
            v.get(v.len() / 2).copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        )
    };
    let (fm, fx) = stat(&mut frames);
    let (pm, px) = stat(&mut polls);
    out.insert("live_steps".into(), detail.steps.len().into());
    out.insert("live_events".into(), detail.log.len().into());
    out.insert("live_frames".into(), frames.len().into());
    out.insert("live_frame_median_ms".into(), fm.into());
    out.insert("live_frame_max_ms".into(), fx.into());
    out.insert("live_poll_median_ms".into(), pm.into());
    out.insert("live_poll_max_ms".into(), px.into());
    Ok(())
}
