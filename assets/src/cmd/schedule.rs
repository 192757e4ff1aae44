//! `assets schedules preview NAME` (the next ticks, in the schedule's timezone, with what each would
//! run) and `assets schedules fire NAME` (a tick now, run here or queued).

use std::path::Path;

pub async fn preview(root: &Path, name: &str, count: usize, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let ticks = engine.preview_schedule(name, count).await;
    engine.close().await;
    let ticks = ticks?;
    let Some(s) = engine.project().schedules.iter().find(|s| s.name == name) else {
        return Ok(2);
    };
    let rows: Vec<(String, String, Vec<String>, Option<String>)> = ticks
        .iter()
        .map(|(at, steps)| {
            let (steps, why) = match steps {
                Ok(steps) => (steps.iter().map(|k| k.to_string()).collect(), None),
                Err(e) => (Vec::new(), Some(e.clone())),
            };
            (s.local(*at), at.to_rfc3339(), steps, why)
        })
        .collect();
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(local, utc, steps, why)| {
                serde_json::json!({"at": local, "utc": utc, "steps": steps, "skipped": why})
            })
            .collect();
        crate::output::json(&v)?;
        return Ok(0);
    }
    println!("{} ({}, {}):", s.name, s.cron, s.timezone);
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(local, utc, steps, why)| {
            let what = match why {
                Some(w) => format!("skipped: {w}"),
                None if steps.len() > 4 => {
                    format!("{} … ({} steps)", steps[..3].join(", "), steps.len())
                }
                None => steps.join(", "),
            };
            vec![local, utc, what]
        })
        .collect();
    crate::output::table(&["tick", "utc", "runs"], &table);
    Ok(0)
}

pub async fn fire(root: &Path, name: &str, queue: bool, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let tick = match engine.fire_schedule(name).await {
        Ok(t) => t,
        Err(e) => {
            engine.close().await;
            return Err(e.into());
        }
    };
    let Some(run_id) = tick.run_id.clone() else {
        engine.close().await;
        let why = tick.reason.unwrap_or_default();
        if json {
            crate::output::json(
                &serde_json::json!({"tick": tick.tick_at, "status": tick.status, "reason": why}),
            )?;
        } else {
            println!("schedule {name}: nothing to run now ({why})");
        }
        return Ok(0);
    };
    engine.close().await;
    if queue {
        if json {
            crate::output::json(&serde_json::json!({"tick": tick.tick_at, "run_id": run_id}))?;
        } else {
            println!("schedule {name} fired: run {run_id} queued (the daemon or `assets execute {run_id}` runs it)");
        }
        return Ok(0);
    }
    if !json {
        println!("schedule {name} fired: run {run_id}");
    }
    super::materialize::execute(root, Some(run_id.as_str()), None, false, json).await
}
