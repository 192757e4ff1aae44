//! Human approvals of parked agent steps: `assets approvals` lists what waits and why, `assets
//! approve|reject RUN STEP [--comment TEXT]` records the decision — who (`SPINE_ACTOR`, else the OS
//! user), when, why — as the step's signal, which the daemon (or `assets execute RUN`) resumes.

use spine_engine::store::StepStatus;
use spine_engine::RunId;
use std::path::Path;

use spine_jobs::agent::APPROVAL_NEEDED as APPROVAL;

/// One step waiting for a decision.
#[derive(serde::Serialize)]
struct Waiting {
    run_id: RunId,
    run: String,
    step: String,
    since: Option<String>,
    reason: String,
}

/// `assets approvals`: every parked step that waits for a human decision.
pub async fn list(root: &Path, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let reader = engine.reader();
    let mut out = Vec::new();
    for run in reader.waiting_runs().await? {
        for step in reader.steps(&run.run_id).await? {
            let Some(reason) = step.reason.filter(|r| r.starts_with(APPROVAL)) else {
                continue;
            };
            if step.status != StepStatus::Waiting {
                continue;
            }
            out.push(Waiting {
                run: crate::output::short_run(reader.as_ref(), &run.run_id).await,
                run_id: run.run_id.clone(),
                step: step.step_id,
                since: step.finished_at.or(step.started_at),
                reason,
            });
        }
    }
    engine.close().await;
    if json {
        crate::output::json(&out)?;
    } else if out.is_empty() {
        println!("nothing waits for an approval");
    } else {
        let rows: Vec<Vec<String>> = out
            .iter()
            .map(|w| {
                vec![
                    w.run.clone(),
                    w.step.clone(),
                    w.since.clone().unwrap_or_default(),
                    w.reason.clone(),
                ]
            })
            .collect();
        crate::output::table(&["RUN", "STEP", "SINCE", "WAITS FOR"], &rows);
        println!("decide with: assets approve|reject RUN STEP [--comment TEXT]");
    }
    Ok(0)
}

/// `assets approve|reject RUN STEP [--comment TEXT]`.
pub async fn decide(
    root: &Path,
    run: &str,
    step: &str,
    approved: bool,
    comment: Option<&str>,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let reader = engine.reader();
    let run_id = reader.get_run(run).await?.run_id;
    let waits = reader
        .steps(&run_id)
        .await?
        .into_iter()
        .find(|s| s.step_id == step && s.status == StepStatus::Waiting)
        .is_some_and(|s| s.reason.is_some_and(|r| r.starts_with(APPROVAL)));
    if !waits {
        engine.close().await;
        return Err(spine_engine::DefinitionError::new(
            "E0408",
            format!("step '{step}' of run {run} does not wait for an approval"),
        )
        .hint("`assets approvals` lists what does; `assets signal` signals other parked steps")
        .into());
    }
    let decision = if approved { "approved" } else { "rejected" };
    let by = spine_engine::actor_name();
    let payload = serde_json::json!({
        "decision": decision,
        "by": by,
        "comment": comment,
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let result = engine.signal(&run_id, step, payload.clone()).await;
    let short = crate::output::short_run(reader.as_ref(), &run_id).await;
    engine.close().await;
    result?;
    if json {
        crate::output::json(
            &serde_json::json!({"run_id": run_id, "step": step, "decision": payload}),
        )?;
    } else {
        println!("{decision} {step} of run {short} as {by}; the daemon resumes it (or: assets execute {short})");
    }
    Ok(0)
}
