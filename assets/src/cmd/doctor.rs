//! `assets doctor [SELECTION…] [--repair]`: check each materialized asset's Delta table against the run
//! store; with `--repair`, move unreadable tables aside and re-materialize what is broken.

use std::path::Path;

pub async fn run(
    root: &Path,
    selection: Option<&str>,
    repair: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, selection).await?;
    let found = engine.doctor(selection).await?;
    let repair = if repair {
        Some(engine.repair(&found).await?)
    } else {
        None
    };
    let re_recorded = repair
        .as_ref()
        .map(|r| r.re_recorded.clone())
        .unwrap_or_default();
    let repaired = repair.and_then(|r| r.run);
    // Broken only for being behind the tables, and re-recorded: mended.
    let broken = found
        .iter()
        .filter(|d| d.state == "broken" && !(re_recorded.contains(&d.key) && d.problems.len() == 1))
        .count();
    engine.close().await;
    if json {
        crate::output::json(&serde_json::json!({
            "assets": found, "re_recorded": re_recorded, "repair_run": repaired
        }))?;
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|d| {
                vec![
                    d.key.to_string(),
                    d.state.replace('_', "-"),
                    d.recorded_version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    d.problems.join("; "),
                ]
            })
            .collect();
        crate::output::table(&["asset", "state", "version", "problems"], &rows);
        if !re_recorded.is_empty() {
            let keys: Vec<String> = re_recorded.iter().map(|k| k.to_string()).collect();
            println!(
                "re-recorded from the tables' commits (nothing recomputed): {}",
                keys.join(", ")
            );
        }
        match (&repaired, broken) {
            (_, 0) => println!("all tables agree with the run store"),
            (None, n) => println!("{n} broken; `assets doctor --repair` re-materializes them"),
            (Some(r), n) => println!(
                "repaired {n} asset(s) in run {} ({}); unreadable tables were moved to .spine/quarantine/",
                r.run_id, r.status
            ),
        }
    }
    Ok(match (&repaired, broken) {
        (_, 0) => 0,
        (Some(r), _) if r.status == spine_engine::store::RunStatus::Succeeded => 0,
        _ => 1,
    })
}
