//! `assets backfill SELECTION --from A --to B`, `assets backfill status|cancel|resume ID`,
//! `assets backfills`.

use super::materialize::{ctrl_c_token, Progress};
use crate::output::{millis, table};
use spine_engine::{BackfillRequest, BackfillState, BackfillStatus, Engine, ExecuteOptions};
use std::path::Path;
use std::time::Instant;

/// How a backfill runs in this process.
pub struct RunArgs {
    pub concurrency: Option<usize>,
    pub json: bool,
    /// Stop at the first failed step (`--fail-fast`): the backfill is cancelled.
    pub fail_fast: bool,
    /// Tags on its runs (`--tag`).
    pub tags: std::collections::BTreeMap<String, String>,
}

/// `assets backfill …`: record the backfill, then run it here (or, with `queue`, only record it).
pub async fn create(
    root: &Path,
    req: BackfillRequest,
    queue: bool,
    args: RunArgs,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, req.selection.as_deref())
        .await?
        .with_tags(args.tags.clone());
    let Some(id) = engine.create_backfill(&req).await? else {
        engine.close().await;
        if args.json {
            crate::output::json(&serde_json::json!({"backfill_id": null, "steps": 0}))?;
        } else {
            println!(
                "nothing to backfill: no selected partition is {}",
                match req.filter {
                    spine_engine::BackfillFilter::Missing => "missing",
                    spine_engine::BackfillFilter::Failed => "failed",
                    spine_engine::BackfillFilter::All => "in the range",
                }
            );
        }
        return Ok(0);
    };
    let status = engine.backfill_status(id.as_str()).await?;
    if !args.json {
        println!(
            "backfill {id}: {} step(s) in {} run(s) of up to {} partition(s)",
            status.record.steps,
            status.chunks.len(),
            status.record.per_run
        );
    }
    if queue {
        engine.close().await;
        if args.json {
            crate::output::json(&status)?;
        } else {
            println!("queued; run it with: assets backfill resume {id}");
        }
        return Ok(0);
    }
    drive(&engine, id.as_str(), status.remaining, args).await
}

/// `assets backfill resume ID`: settle what a crash left, re-plan what is not committed, run the rest.
pub async fn resume(root: &Path, id: &str, args: RunArgs) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let status = engine.prepare_resume(id).await?;
    if !args.json {
        println!(
            "backfill {}: {} of {} step(s) done, resuming {}",
            status.record.backfill_id, status.done, status.record.steps, status.remaining
        );
    }
    let id = status.record.backfill_id.to_string();
    drive(&engine, &id, status.remaining, args).await
}

/// Runs the backfill's queued runs with one progress bar over its remaining steps.
async fn drive(engine: &Engine, id: &str, remaining: usize, args: RunArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let progress = Progress::new(args.json, Some(remaining as u64));
    let interrupted = ctrl_c_token("backfill");
    if args.fail_fast {
        let _ = progress.stop_on_failure.set(interrupted.clone());
    }
    let opts = ExecuteOptions {
        concurrency: args.concurrency,
        cancel: interrupted.clone(),
        observer: Some(progress.clone()),
        no_wait: false,
    };
    let mut result = engine.run_backfill(id, opts).await;
    // Ctrl-C cancels the backfill itself, not only the run at hand: its queued runs must not be
    // picked up by a daemon afterwards (`assets backfill resume` continues it on purpose).
    if interrupted.is_cancelled() {
        result = engine.cancel_backfill(id).await;
    }
    progress.finish();
    let _ = tokio::task::spawn_blocking(spine_jobs::command::wait_for_abandoned_groups).await;
    let status = result?;
    engine.close().await;
    if args.json {
        crate::output::json(&status)?;
    } else {
        println!(
            "backfill {} {}: {} of {} step(s) done, {} failed{}, {} to do, in {}",
            status.record.backfill_id,
            status.state,
            status.done,
            status.record.steps,
            status.failed,
            skipped_text(status.skipped),
            status.remaining,
            millis(started.elapsed().as_millis())
        );
        print_failures(&status);
        if status.state != BackfillState::Succeeded {
            println!(
                "resume it with: assets backfill resume {}",
                status.record.backfill_id
            );
        }
    }
    Ok(exit_code(status.state))
}

fn exit_code(state: BackfillState) -> u8 {
    match state {
        BackfillState::Succeeded | BackfillState::Waiting => 0,
        _ => 1,
    }
}

fn print_failures(status: &BackfillStatus) {
    for (step, error) in &status.failures {
        println!("  ✗ {step}: {error}");
    }
}

/// `assets backfill status ID`.
pub async fn show(root: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let status = engine.backfill_status(id).await?;
    engine.close().await;
    if json {
        crate::output::json(&status)?;
        return Ok(0);
    }
    let r = &status.record;
    println!("backfill   {}", r.backfill_id);
    println!("state      {}", status.state);
    println!("selection  {}", r.selection.as_deref().unwrap_or("*"));
    println!(
        "partitions {}{}",
        r.partitions,
        r.filter
            .as_deref()
            .map(|f| format!(" (only {f})"))
            .unwrap_or_default()
    );
    println!("created    {}", r.created_at);
    println!(
        "progress   {} of {} step(s) done, {} failed{}, {} to do",
        status.done,
        r.steps,
        status.failed,
        skipped_text(status.skipped),
        status.remaining
    );
    let rows: Vec<Vec<String>> = status
        .chunks
        .iter()
        .map(|c| {
            vec![
                c.chunk.to_string(),
                match (&c.first, &c.last) {
                    (Some(a), Some(b)) if a != b => format!("{a}..{b}"),
                    (Some(a), _) => a.clone(),
                    _ => "-".into(),
                },
                format!("{}/{}", c.done, c.steps),
                c.run_status.to_string(),
                c.runs.to_string(),
                c.run_id.to_string(),
            ]
        })
        .collect();
    println!();
    table(
        &[
            "chunk",
            "partitions",
            "done",
            "run status",
            "runs",
            "latest run",
        ],
        &rows,
    );
    print_failures(&status);
    Ok(0)
}

/// `assets backfill cancel ID`.
pub async fn cancel(root: &Path, id: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let status = engine.cancel_backfill(id).await?;
    engine.close().await;
    if json {
        crate::output::json(&status)?;
    } else {
        println!(
            "backfill {} {}: {} of {} step(s) done; a running run stops before its next commit; \
             `assets backfill resume {}` continues it",
            status.record.backfill_id,
            status.state,
            status.done,
            status.record.steps,
            status.record.backfill_id
        );
    }
    Ok(0)
}

/// `assets backfills`.
pub async fn list(root: &Path, limit: i64, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let all = engine.backfills(limit).await?;
    engine.close().await;
    if json {
        crate::output::json(&all)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|b| {
            vec![
                b.record.backfill_id.to_string(),
                b.state.to_string(),
                format!("{}/{}", b.done, b.record.steps),
                b.record.partitions.clone(),
                b.record.selection.clone().unwrap_or_else(|| "*".into()),
                b.record.created_at.clone(),
            ]
        })
        .collect();
    table(
        &[
            "backfill",
            "state",
            "done",
            "partitions",
            "selection",
            "created",
        ],
        &rows,
    );
    Ok(0)
}

/// ", N skipped" when steps were skipped behind a failure (they did not fail themselves).
fn skipped_text(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(", {skipped} skipped")
    }
}
