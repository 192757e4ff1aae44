//! The audit log from the command line: every mutating command is recorded (who, what, when, from
//! where, its arguments) when it opens the engine, before it acts; `assets audit` lists the log and
//! `assets audit verify` checks its hash chain, naming the first entry that was changed or follows a
//! removed one.

use crate::{
    BackfillAction, Command, PartitionsAction, RolloutAction, ScheduleAction, TemporalAction,
};
use spine_engine::{Engine, EngineError};
use std::path::Path;
use std::sync::Mutex;

/// The action the running command will record when it opens the engine.
static PENDING: Mutex<Option<(String, String)>> = Mutex::new(None);

/// What `cmd` does to record, if it changes anything: (action, target).
fn action(cmd: &Command) -> Option<(&'static str, String)> {
    let sel = |s: &crate::SelectArgs| {
        let mut all = s.selection.clone();
        all.extend(s.select.iter().cloned());
        all.join(" ")
    };
    Some(match cmd {
        Command::Materialize {
            select,
            dry_run: false,
            ..
        } => ("materialize", sel(select)),
        Command::Observe { select } => ("observe", sel(select)),
        Command::Execute { run, .. } => ("execute", run.clone().unwrap_or_default()),
        Command::Backfill { action: None, args } => ("backfill", sel(&args.select)),
        Command::Backfill {
            action: Some(BackfillAction::Cancel { id }),
            ..
        } => ("backfill cancel", id.clone()),
        Command::Backfill {
            action: Some(BackfillAction::Resume { id, .. }),
            ..
        } => ("backfill resume", id.clone()),
        Command::Cancel { run } => ("cancel", run.clone()),
        Command::Rerun { run, .. } => ("rerun", run.clone()),
        Command::Signal { run, step, .. } => ("signal", format!("{run} {step}")),
        Command::Approve { run, step, .. } => ("approve", format!("{run} {step}")),
        Command::Reject { run, step, .. } => ("reject", format!("{run} {step}")),
        Command::Publish { key, .. } => ("publish", key.clone()),
        Command::Rollout {
            action: RolloutAction::Promote { subject, .. },
        } => ("rollout promote", subject.clone()),
        Command::Rollout {
            action: RolloutAction::Rollback { subject, .. },
        } => ("rollout rollback", subject.clone()),
        Command::Partitions {
            action: Some(PartitionsAction::Add { name, .. }),
            ..
        } => ("partitions add", name.clone()),
        Command::Schedules {
            action: Some(ScheduleAction::Fire { name, .. }),
        } => ("schedule fire", name.clone()),
        Command::Optimize { key, .. } => ("optimize", key.clone()),
        Command::Vacuum {
            key,
            dry_run: false,
            ..
        } => ("vacuum", key.clone()),
        Command::Doctor {
            select,
            repair: true,
        } => ("doctor repair", sel(select)),
        Command::Gc { dry_run: false, .. } => ("gc", String::new()),
        Command::Temporal {
            action: TemporalAction::Signal { key, .. },
        } => ("temporal signal", key.clone()),
        _ => return None,
    })
    .map(|(a, t)| (a, t.trim().to_string()))
}

/// Notes what the running command is, to be recorded when it opens the engine ([`flush`]).
pub(super) fn intend(cmd: &Command) {
    if let Some((a, t)) = action(cmd) {
        *PENDING.lock().unwrap_or_else(|p| p.into_inner()) = Some((a.to_string(), t));
    }
}

/// Records the running command's action, once, with its command line as the details.
pub(super) async fn flush(engine: &Engine) -> Result<(), EngineError> {
    let pending = PENDING.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some((action, target)) = pending else {
        return Ok(());
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    engine
        .audit(&action, &target, serde_json::json!({ "args": args }))
        .await?;
    Ok(())
}

/// `assets audit [--limit N]`: the newest entries, oldest first.
pub async fn list(root: &Path, limit: i64, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let all = engine.audit_log().await;
    engine.close().await;
    let all = all?;
    let shown = &all[all.len().saturating_sub(limit.max(0) as usize)..];
    if json {
        crate::output::json(&shown)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.at.clone(),
                e.actor.clone(),
                format!("{}@{}", e.origin, e.host),
                e.action.clone(),
                e.target.clone(),
            ]
        })
        .collect();
    crate::output::table(&["id", "at", "who", "from", "action", "target"], &rows);
    Ok(0)
}

/// `assets audit verify`: exit 0 when the chain holds; 1 naming the first bad entry.
pub async fn verify(root: &Path, json: bool) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let all = engine.audit_log().await;
    engine.close().await;
    let all = all?;
    let verdict = spine_engine::store::audit::verify(&all);
    if json {
        let v = match &verdict {
            Ok(()) => serde_json::json!({"ok": true, "entries": all.len()}),
            Err(b) => {
                serde_json::json!({"ok": false, "entries": all.len(), "first_bad": b.id, "why": b.why})
            }
        };
        crate::output::json(&v)?;
    } else {
        match &verdict {
            Ok(()) => println!(
                "audit log intact: {} entries, hash chain verified",
                all.len()
            ),
            Err(b) => eprintln!("audit log tampered: entry {}: {}", b.id, b.why),
        }
    }
    Ok(if verdict.is_ok() { 0 } else { 1 })
}
