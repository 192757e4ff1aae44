//! `assets daemon` (schedules, queued backfills and runs; SIGTERM stops it after the current run),
//! `assets schedules`, `assets ticks`.

use crate::output::table;
use spine_engine::{CancellationToken, ExecuteOptions};
use std::path::Path;
use std::time::Duration;

/// `assets daemon [--interval D] [--once]`.
pub async fn run(root: &Path, interval: &str, once: bool, json: bool) -> anyhow::Result<u8> {
    let interval = parse_interval(interval)?;
    let engine = super::engine(root, None).await?;
    let stop = CancellationToken::new();
    let cancel_runs = CancellationToken::new();
    {
        let (stop, cancel_runs) = (stop.clone(), cancel_runs.clone());
        tokio::spawn(async move {
            shutdown_signal().await;
            eprintln!("stopping: finishing the current run (signal again to cancel it)");
            stop.cancel();
            shutdown_signal().await;
            cancel_runs.cancel();
        });
    }
    let opts = ExecuteOptions {
        cancel: cancel_runs,
        ..Default::default()
    };
    if !json {
        let how = if once {
            "one pass".to_string()
        } else {
            format!("a pass every {}", interval_text(interval))
        };
        println!(
            "daemon for {} ({} schedule(s), {} sensor(s)), {how}",
            engine.project().config.name,
            engine.project().schedules.len(),
            engine.project().sensors.len(),
        );
    }
    let result = engine
        .run_daemon(interval, opts, stop, once, |pass| {
            if json {
                let _ = crate::output::json(pass);
                return;
            }
            for t in &pass.ticks {
                println!(
                    "tick {} {} {}{}",
                    t.schedule,
                    t.tick_at,
                    t.status,
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
            for (run, status) in &pass.runs {
                println!("run {run} {status}");
            }
            for b in &pass.backfills {
                println!("backfill {b} ran");
            }
        })
        .await;
    let _ = tokio::task::spawn_blocking(spine_jobs::command::wait_for_abandoned_groups).await;
    engine.close().await;
    result?;
    Ok(0)
}

/// SIGTERM or Ctrl-C.
pub(super) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let bad = || {
        spine_engine::DefinitionError::new("E0417", format!("--interval '{s}' is not a duration"))
            .hint("e.g. --interval 30s, 5m or 1h")
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n.max(1))),
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad().into()),
    };
    Ok(Duration::from_secs(secs.max(1)))
}

fn interval_text(d: Duration) -> String {
    if d.as_secs() >= 60 && d.as_secs().is_multiple_of(60) {
        format!("{} min", d.as_secs() / 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `assets schedules`: each schedule with its next tick and its latest.
pub async fn schedules(root: &Path, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for s in &engine.project().schedules {
        let next = s.next_after(now).map(|t| t.to_rfc3339());
        let last = engine.reader().last_tick(&s.name).await?;
        rows.push(vec![
            s.name.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            s.selection.clone().unwrap_or_else(|| "*".into()),
            format!("{:?}", s.partition).to_lowercase(),
            format!("{:?}", s.catch_up).to_lowercase(),
            next.clone().unwrap_or_else(|| "-".into()),
            last.clone().unwrap_or_else(|| "-".into()),
        ]);
        out.push(serde_json::json!({"schedule": s, "next_tick": next, "last_tick": last}));
    }
    engine.close().await;
    if json {
        crate::output::json(&out)?;
    } else {
        table(
            &[
                "schedule",
                "cron",
                "timezone",
                "select",
                "partition",
                "catch up",
                "next",
                "last",
            ],
            &rows,
        );
    }
    Ok(0)
}

/// `assets sensors`: each sensor with its prefix, objects there and new, and its latest tick.
pub async fn sensors(root: &Path, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for s in &engine.project().sensors {
        let last = engine.reader().last_tick(&s.name).await?;
        let cursor = last
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let (objects, new, error) = match engine.sensed_objects(s).await {
            Ok(objects) => {
                let new = objects
                    .iter()
                    .filter(|o| cursor.is_none_or(|c| o.modified > c))
                    .count();
                (Some(objects.len()), Some(new), None)
            }
            Err(e) => (None, None, Some(e.to_string())),
        };
        let n = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        rows.push(vec![
            s.name.clone(),
            s.objects.to_string(),
            s.pattern.clone().unwrap_or_else(|| "*".into()),
            s.selection.clone().unwrap_or_else(|| "*".into()),
            s.add_partitions.clone().unwrap_or_else(|| "-".into()),
            n(objects),
            n(new),
            last.clone().unwrap_or_else(|| "-".into()),
        ]);
        out.push(
            serde_json::json!({"sensor": s, "objects_now": objects, "new": new,
            "last_tick": last, "error": error}),
        );
        if let Some(e) = error {
            eprintln!("{e}");
        }
    }
    engine.close().await;
    if json {
        crate::output::json(&out)?;
    } else {
        table(
            &[
                "sensor", "objects", "pattern", "select", "adds to", "there", "new", "last",
            ],
            &rows,
        );
    }
    Ok(0)
}

/// `assets ticks [--schedule NAME] [--limit N]`.
pub async fn ticks(
    root: &Path,
    schedule: Option<&str>,
    limit: i64,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    if let Some(name) = schedule {
        let p = engine.project();
        let known = p.schedules.iter().any(|s| s.name == name)
            || p.sensors.iter().any(|s| s.name == name)
            || name == "automation";
        if !known {
            engine.close().await;
            return Err(spine_engine::DefinitionError::new(
                "E0220",
                format!("no schedule or sensor is named '{name}'"),
            )
            .hint("`assets schedules` and `assets sensors` list them")
            .into());
        }
    }
    let ticks = engine.reader().ticks(schedule, limit).await?;
    engine.close().await;
    if json {
        crate::output::json(&ticks)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = ticks
        .iter()
        .map(|t| {
            vec![
                t.schedule.clone(),
                t.tick_at.clone(),
                t.status.clone(),
                t.run_id.as_ref().map(|r| r.to_string()).unwrap_or_default(),
                t.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["schedule", "tick", "status", "run", "reason"], &rows);
    Ok(0)
}

/// `assets automation explain ASSET [--partition K]`.
pub async fn explain(
    root: &Path,
    key: &str,
    partition: Option<&str>,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let (step, eval) = engine.explain_automation(key, partition).await?;
    engine.close().await;
    if json {
        crate::output::json(&serde_json::json!({"step": step.to_string(), "evaluation": eval}))?;
        return Ok(0);
    }
    println!(
        "{step}: {}",
        if eval.value {
            "the daemon would materialize it now"
        } else {
            "the daemon would not materialize it now"
        }
    );
    fn print(e: &spine_engine::Evaluation, depth: usize) {
        println!(
            "{:indent$}{:<w$} {:<5}  {}",
            "",
            e.condition,
            e.value,
            e.reason,
            indent = 2 + depth * 2,
            w = 24usize.saturating_sub(depth * 2)
        );
        for c in &e.children {
            print(c, depth + 1);
        }
    }
    print(&eval, 0);
    Ok(0)
}
