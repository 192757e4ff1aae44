//! `assets bench --store URL…`: the run store alone, the way workers use it. For each store, each
//! number of concurrent clients and each way a step ends, every client takes its steps one after
//! another as a worker does — claim and start a ready step at once (`start_ready_step`), then
//! finish it while holding its claim (`finish_claimed_step`) — and the
//! table has steps per second over all clients and the latency of claim + start (p50, p99). A step
//! ends either with nothing to record (`end`: a step up to date, skipped or failed) or with a
//! materialization as a SQL step records one (`record`: one upstream read, three columns of column
//! lineage). `sqlite` means a fresh SQLite file; a `postgres://` URL is used as given.

use spine_engine::column_lineage::{ColumnSource, How, OutputColumn};
use spine_engine::key::{AssetKey, RunId, StepKey};
use spine_engine::store::{
    now, open_store, ClaimLimits, Claimed, NewEvent, NewMaterialization, RunRecord, RunStore,
    StepClaim, StepOutcome, StepRecord, StepStatus, UpstreamRead,
};
use spine_schemas::events::EventKind;
use std::sync::Arc;
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// What a bench step records when it ends (`record`): as a SQL step's materialization does.
fn materialization(k: &StepKey, r: &RunId, seq: i64) -> anyhow::Result<NewMaterialization> {
    let up = AssetKey::parse("bench/upstream")?;
    let columns = ["id", "value", "day"]
        .iter()
        .map(|c| OutputColumn {
            column: c.to_string(),
            sources: vec![ColumnSource {
                asset: up.clone(),
                column: c.to_string(),
                how: How::Identity,
            }],
        })
        .collect();
    Ok(NewMaterialization {
        asset_key: k.asset.clone(),
        partition_key: None,
        run_id: r.clone(),
        step_id: k.to_string(),
        seq,
        delta_version: 0,
        row_count: 1,
        schema: serde_json::json!({"fields": []}),
        data_version: "bench".into(),
        code_version: "bench".into(),
        upstream: vec![UpstreamRead {
            key: up,
            partition: None,
            materialization_id: Some(1),
            delta_version: Some(0),
        }],
        metadata: serde_json::json!({}),
        published: true,
        checks: Vec::new(),
        columns,
    })
}

/// One client's run: `steps` step keys of its own, each claimed, started and finished (with a
/// materialization when `record`); the latency of each claim + start in milliseconds.
async fn client(
    store: Arc<dyn RunStore>,
    c: usize,
    steps: usize,
    record: bool,
) -> anyhow::Result<Vec<f64>> {
    let r = RunId::new();
    let keys: Vec<StepKey> = (0..steps)
        .map(|i| AssetKey::parse(&format!("bench/c{c}_s{i}")).map(StepKey::whole))
        .collect::<Result<_, _>>()?;
    let run = RunRecord::queued(&r, now(), Some("bench"));
    let planned: Vec<StepRecord> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| StepRecord::planned(&r, i as i64, k))
        .collect();
    store.create_run(&run, &planned).await?;
    let owner = format!("bench:{c}:{r}");
    let mut latencies = Vec::with_capacity(steps);
    for k in &keys {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let claim = StepClaim {
            step: k.clone(),
            run_id: r.clone(),
            owner: owner.clone(),
            lease_until_ms: now_ms + 60_000,
        };
        let ev = |kind| NewEvent::new(&r, Some(k.to_string().as_str()), kind, "info", "bench");
        let t = Instant::now();
        let started = store
            .start_ready_step(
                &claim,
                &ClaimLimits::default(),
                1,
                ev(EventKind::StepStarted),
                now_ms,
                None,
            )
            .await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        let Claimed::Got(started) = started else {
            anyhow::bail!("step {k} was not started: {started:?}");
        };
        let seq = started.seq;
        let outcome = StepOutcome {
            status: StepStatus::Succeeded,
            error: None,
            failure_class: None,
            reason: None,
            materialization: record.then(|| materialization(k, &r, seq)).transpose()?,
            events: vec![ev(EventKind::Materialization)],
        };
        let recorded = store.finish_claimed_step(&owner, &r, k, outcome).await?;
        anyhow::ensure!(recorded.is_some(), "step {k} lost its claim");
    }
    Ok(latencies)
}

pub async fn run(stores: &[String], clients: &[usize], steps: usize) -> anyhow::Result<u8> {
    let mut rows = Vec::new();
    for url in stores {
        let dir = tempfile::tempdir()?;
        let (label, url) = if url == "sqlite" {
            let u = format!("sqlite://{}/state.db", dir.path().display());
            ("sqlite".to_string(), u)
        } else {
            let host = url.split('@').next_back().unwrap_or(url);
            (format!("postgres {host}"), url.clone())
        };
        let store = open_store(&url).await?;
        for (&n, record) in clients.iter().flat_map(|n| [(n, false), (n, true)]) {
            let n = n.max(1);
            let t = Instant::now();
            let tasks: Vec<_> = (0..n)
                .map(|c| tokio::spawn(client(store.clone(), c, (steps / n).max(1), record)))
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await??);
            }
            let wall = t.elapsed().as_secs_f64();
            latencies.sort_by(|a, b| a.total_cmp(b));
            rows.push(vec![
                label.clone(),
                n.to_string(),
                if record { "record" } else { "end" }.to_string(),
                latencies.len().to_string(),
                format!("{:.0}", latencies.len() as f64 / wall),
                format!("{:.2} ms", percentile(&latencies, 0.5)),
                format!("{:.2} ms", percentile(&latencies, 0.99)),
            ]);
        }
        store.close().await;
    }
    println!(
        "assets bench --store: claim + start of a ready step, then finish under the claim; build profile: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    crate::output::table(
        &[
            "store",
            "clients",
            "step ends",
            "steps",
            "steps/s",
            "claim+start p50",
            "claim+start p99",
        ],
        &rows,
    );
    Ok(0)
}
