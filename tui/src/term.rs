//! The terminal side: raw mode and the alternate screen (restored on exit and on panic, by ratatui's
//! `init`), a thread reading keys, and a loop that draws, handles keys and polls the run store —
//! the run list every second, the catalog when a run changed, an open run's new events (by id) twice a
//! second.

use crate::app::{App, Detail, Effect};
use crate::model::{self, AssetDetail};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use spine_engine::store::CancelOutcome;
use spine_engine::{Engine, EngineError, RunId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts executing a queued run outside the UI, so that it outlives the UI (the `assets` binary
/// spawns `assets execute RUN`); the error is a sentence for the bottom line.
pub type Launcher = Arc<dyn Fn(&RunId) -> Result<(), String> + Send + Sync>;

/// Why the UI stopped.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Reading the project's store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The terminal failed.
    #[error("terminal: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the UI on the current terminal until the user quits.
pub async fn run(engine: Engine, launch: Launcher) -> Result<(), UiError> {
    // The first frame shows the project's assets at once; freshness and runs follow.
    let mut app = App::new(model::skeleton(&engine));
    let (tx, mut keys) = tokio::sync::mpsc::unbounded_channel();
    // crossterm's reads block: a thread of their own feeds the loop.
    std::thread::spawn(move || loop {
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(ev) => {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(false) => {
                if tx.is_closed() {
                    return;
                }
            }
            Err(_) => return,
        }
    });
    let mut terminal = ratatui::init();
    terminal.draw(|f| crate::view::draw(f, &app))?;
    match model::load(&engine, 200).await {
        Ok(s) => app.set_snapshot(s),
        Err(e) => app.message = Some(e.to_string()),
    }
    let result = event_loop(&engine, &launch, &mut app, &mut terminal, &mut keys).await;
    ratatui::restore();
    result
}

async fn event_loop(
    engine: &Engine,
    launch: &Launcher,
    app: &mut App,
    terminal: &mut ratatui::DefaultTerminal,
    keys: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> Result<(), UiError> {
    let mut last_runs = Instant::now();
    let mut last_run = Instant::now();
    let mut seen: Vec<model::RunRow> = Vec::new();
    loop {
        terminal.draw(|f| crate::view::draw(f, app))?;
        let tick = tokio::time::sleep(Duration::from_millis(100));
        let event = tokio::select! {
            e = keys.recv() => e,
            _ = tick => None,
        };
        if let Some(Event::Key(k)) = event {
            if k.kind != KeyEventKind::Release {
                let mut next = app.on_key(k);
                while let Some(effect) = next.take() {
                    match effect {
                        Effect::Quit => return Ok(()),
                        Effect::LoadRun(id) => load_run(engine, app, &id).await,
                        Effect::LoadBackfill(id) => load_backfill(engine, app, &id).await,
                        Effect::LoadAsset(key) => match AssetDetail::load(engine, &key, 50).await {
                            Ok(d) => app.set_asset(d),
                            Err(e) => app.message = Some(e.to_string()),
                        },
                        action => next = act(engine, launch, app, action).await,
                    }
                }
            }
        }
        if last_runs.elapsed() >= Duration::from_secs(1) {
            last_runs = Instant::now();
            match model::runs(engine, 200).await {
                Ok(runs) => {
                    let states: Vec<_> = runs
                        .iter()
                        .map(|r| model::RunRow {
                            progress: None,
                            ..r.clone()
                        })
                        .collect();
                    if states != seen {
                        // A run started or ended: the catalog's freshness may have changed too.
                        match model::load(engine, 200).await {
                            Ok(s) => app.set_snapshot(s),
                            Err(e) => app.message = Some(e.to_string()),
                        }
                        seen = states;
                    } else if runs != app.snapshot.runs {
                        // Only steps progressed.
                        app.snapshot.runs = runs;
                    }
                }
                Err(e) => app.message = Some(e.to_string()),
            }
        }
        if last_run.elapsed() >= Duration::from_millis(500) {
            last_run = Instant::now();
            match app.detail.clone() {
                Some(Detail::Run(id)) => load_run(engine, app, &id).await,
                Some(Detail::Backfill(id)) => load_backfill(engine, app, &id).await,
                _ => {}
            }
        }
    }
}

/// Does a confirmed action; a run it started is then shown (the effect that loads it is returned).
async fn act(engine: &Engine, launch: &Launcher, app: &mut App, action: Effect) -> Option<Effect> {
    // Recorded before it is done, like the CLI's mutating commands; not done if it cannot be.
    let audited = match &action {
        Effect::Materialize(selection) => Some(("materialize", selection.clone())),
        Effect::Rerun(run) => Some(("rerun", run.clone())),
        Effect::CancelBackfill(id) => Some(("backfill cancel", id.clone())),
        Effect::Cancel(run) => Some(("cancel", run.clone())),
        _ => None,
    };
    if let Some((what, target)) = audited {
        if let Err(e) = engine.audit(what, &target, serde_json::json!({})).await {
            // Not allowed for this actor's role, or the audit log cannot be written.
            app.message = Some(format!("not done: {e}"));
            return None;
        }
    }
    let started = match action {
        Effect::Materialize(selection) => engine
            .submit(Some(&selection), true)
            .await
            .map(|id| (id, format!("materializing {selection}"))),
        Effect::Rerun(run) => engine
            .rerun(&run, true)
            .await
            .map(|r| (r.run_id, format!("re-running {} step(s)", r.steps.len()))),
        Effect::CancelBackfill(id) => {
            let short: String = id.chars().take(12).collect();
            app.message = Some(match engine.cancel_backfill(&id).await {
                Ok(b) => format!("backfill {short} is {}", b.state),
                Err(e) => e.to_string(),
            });
            if let Some(Detail::Backfill(open)) = app.detail.clone() {
                load_backfill(engine, app, &open).await;
            }
            return None;
        }
        Effect::Cancel(run) => {
            let short: String = run.chars().take(12).collect();
            app.message = Some(match engine.cancel_run(&run).await {
                Ok(CancelOutcome::Cancelled) => format!("cancelled run {short}"),
                Ok(CancelOutcome::Requested) => {
                    format!(
                        "asked run {short} to stop: steps that have not committed are cancelled"
                    )
                }
                Ok(CancelOutcome::Ended(s)) => format!("run {short} had ended ({s})"),
                Err(e) => e.to_string(),
            });
            return None;
        }
        _ => return None,
    };
    let (id, what) = match started {
        Ok(s) => s,
        Err(e) => {
            app.message = Some(e.to_string());
            return None;
        }
    };
    let short: String = id.as_str().chars().take(12).collect();
    app.message = Some(match launch(&id) {
        Ok(()) => format!("{what}: run {short}"),
        Err(e) => {
            format!("run {short} is queued but did not start ({e}): `assets execute {short}`")
        }
    });
    match model::load(engine, 200).await {
        Ok(s) => app.set_snapshot(s),
        Err(e) => app.message = Some(e.to_string()),
    }
    Some(app.open_run(id.as_str()))
}

async fn load_run(engine: &Engine, app: &mut App, id: &str) {
    let mut detail = std::mem::take(&mut app.run);
    if let Err(e) = detail.load(engine, id).await {
        app.message = Some(e.to_string());
    }
    app.set_run(detail);
}

async fn load_backfill(engine: &Engine, app: &mut App, id: &str) {
    match crate::backfill::BackfillDetail::load(engine, id).await {
        Ok(d) => app.set_backfill(d),
        Err(e) => app.message = Some(e.to_string()),
    }
}
