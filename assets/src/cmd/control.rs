//! `assets cancel RUN` and `assets rerun RUN [--all] [--queue]`.

use spine_engine::store::CancelOutcome;
use std::path::Path;

/// Cancels a run: a queued or parked one at once, a running one through its executor.
pub async fn cancel(root: &Path, run: &str, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let result = engine.cancel_run(run).await;
    let run_id = match &result {
        Ok(_) => Some(engine.reader().get_run(run).await?.run_id),
        Err(_) => None,
    };
    let short = match &run_id {
        Some(id) => crate::output::short_run(engine.reader().as_ref(), id).await,
        None => String::new(),
    };
    engine.close().await;
    let outcome = result?;
    let (state, text) = match outcome {
        CancelOutcome::Cancelled => ("cancelled", format!("cancelled run {short}")),
        CancelOutcome::Requested => (
            "cancel_requested",
            format!(
                "asked run {short} to stop: its executor cancels every step that has not \
                 committed (`assets run {short}` shows when it has)"
            ),
        ),
        CancelOutcome::Ended(s) => ("ended", format!("run {short} had ended ({s})")),
    };
    if json {
        crate::output::json(&serde_json::json!({"run_id": run_id, "outcome": state}))?;
    } else {
        println!("{text}");
    }
    Ok(0)
}

/// Records a re-execution of an ended run (its unfinished steps, or `all` of them) and executes it
/// here, unless `queue`.
pub async fn rerun(
    root: &Path,
    run: &str,
    all: bool,
    queue: bool,
    concurrency: Option<usize>,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    // Before anything is recorded: the executor's queue must be reachable.
    let steps_to = match queue {
        false => super::worker::executor_queue(&engine).await?,
        true => None,
    };
    let rerun = match engine.rerun(run, !all).await {
        Ok(r) => r,
        Err(e) => {
            engine.close().await;
            return Err(e.into());
        }
    };
    if queue {
        let short = crate::output::short_run(engine.reader().as_ref(), &rerun.run_id).await;
        engine.close().await;
        if json {
            crate::output::json(&serde_json::json!({
                "run_id": rerun.run_id,
                "status": "queued",
                "steps": rerun.steps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))?;
        } else {
            println!(
                "queued run {short} ({} steps); run it with: assets execute {short}",
                rerun.steps.len()
            );
        }
        return Ok(0);
    }
    if !json {
        eprintln!(
            "re-running {} step(s) of run {run} as run {}",
            rerun.steps.len(),
            rerun.run_id
        );
    }
    let how = (false, false);
    super::materialize::drive(&engine, &rerun.run_id, concurrency, how, steps_to, json).await
}
