//! `assets bench`: measures the engine on generated projects and prints a table (medians over runs).
//!
//! Workloads: a chain of N one-row SQL assets; a fan-out 1 → N → 1; 365 daily partitions of one asset
//! and a rollup over them (a year's backfill in one run); and load + validate + select + plan
//! of a generated graph of `plan_n` assets. Each materialization is cold (new state and warehouse) and
//! complete: durable run-store writes and Delta commits included.

use spine_engine::loader::load_project;
use spine_engine::selection::select;
use spine_engine::store::RunStatus;
use spine_engine::{BackfillRequest, BackfillState, Engine, MaterializeRequest};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Peak resident memory of this process since the last reset, in MiB (Linux).
fn peak_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn write_project(
    dir: &Path,
    assets: &[(String, String)],
    per_file: usize,
    fsync: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("assets"))?;
    let toml = format!(
        "[project]\nname = \"bench\"\n[defaults]\nconcurrency = 2\n[warehouse]\nfsync = {fsync}\n"
    );
    std::fs::write(dir.join("spine.toml"), toml)?;
    for (i, chunk) in assets.chunks(per_file.max(1)).enumerate() {
        let mut y = String::from("assets:\n");
        for (key, sql) in chunk {
            let _ = writeln!(y, "  - key: {key}\n    kind: sql\n    query: \"{sql}\"");
        }
        std::fs::write(dir.join("assets").join(format!("part{i:04}.yaml")), y)?;
    }
    Ok(())
}

fn chain(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let sql = if i == 0 {
                "SELECT 1 AS v".to_string()
            } else {
                format!("SELECT v + 1 AS v FROM c{}", i - 1)
            };
            (format!("c{i}"), sql)
        })
        .collect()
}

fn fanout(n: usize) -> Vec<(String, String)> {
    let mut v = vec![("root".to_string(), "SELECT 1 AS v".to_string())];
    v.extend((0..n).map(|i| {
        (
            format!("child{i}"),
            format!("SELECT v + {i} AS v FROM root"),
        )
    }));
    let union: Vec<String> = (0..n).map(|i| format!("SELECT v FROM child{i}")).collect();
    v.push((
        "sink".to_string(),
        format!(
            "SELECT SUM(v) AS total FROM ({})",
            union.join(" UNION ALL ")
        ),
    ));
    v
}

/// One asset with `days` daily partitions (from 2024-01-01, or earlier when that many days have not
/// ended by 2026-01-01) and an unpartitioned rollup over them.
fn write_partitioned(dir: &Path, days: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(
        dir.join("spine.toml"),
        "[project]\nname = \"bench\"\n[defaults]\nconcurrency = 2\n",
    )?;
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.checked_sub_days(chrono::Days::new(days.saturating_sub(730) as u64)))
        .ok_or_else(|| anyhow::anyhow!("{days} days is out of range"))?;
    let end = start
        .checked_add_days(chrono::Days::new(days as u64))
        .ok_or_else(|| anyhow::anyhow!("{days} days is out of range"))?;
    let yaml = format!(
        "assets:\n  - key: events\n    kind: sql\n    partitions: {{daily: {{start: {start}, end: {end}}}}}\n    query: \"SELECT '{{{{ partition_key }}}}' AS day, 1 AS v\"\n  - key: total\n    kind: sql\n    query: SELECT COUNT(*) AS days FROM events\n"
    );
    std::fs::write(dir.join("assets").join("events.yaml"), yaml)?;
    Ok(())
}

/// A layered graph: each asset reads its predecessor and one asset about half-way back.
fn big_graph(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let sql = match i {
                0 => "SELECT 1 AS v".to_string(),
                1 => "SELECT v FROM g.a0".to_string(),
                _ => format!(
                    "SELECT a.v FROM g.a{} a JOIN g.a{} b ON a.v = b.v",
                    i - 1,
                    i / 2
                ),
            };
            (format!("g/a{i}"), sql)
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Materializes a fresh project; returns wall seconds, peak MiB, and the folder (kept until the bench
/// ends: deleting thousands of files between runs slows the next run's file creation on ext4).
async fn materialize_once(
    assets: &Workload,
    fsync: bool,
) -> anyhow::Result<(f64, f64, tempfile::TempDir, Option<CommitProfile>)> {
    let dir = tempfile::tempdir()?;
    match assets {
        Workload::Assets(assets) => write_project(dir.path(), assets, 1000, fsync)?,
        Workload::DailyPartitions(days) | Workload::Backfill { days, .. } => {
            write_partitioned(dir.path(), *days)?
        }
    }
    reset_peak();
    let t = Instant::now();
    let engine = Engine::load(dir.path(), crate::cmd::kinds()).await?;
    if let Workload::Backfill { days, per_run } = assets {
        let req = BackfillRequest {
            selection: Some("events".into()),
            per_run: *per_run,
            ..Default::default()
        };
        let id = engine
            .create_backfill(&req)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the backfill planned nothing"))?;
        let status = engine.run_backfill(id.as_str(), Default::default()).await?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            status.state == BackfillState::Succeeded && status.done == *days,
            "bench backfill ended {} with {} of {days} done: {:?}",
            status.state,
            status.done,
            status.failures.first()
        );
        let profile = commit_profile(&engine)?;
        return Ok((secs, peak_mib().unwrap_or(f64::NAN), dir, Some(profile)));
    }
    let report = engine.materialize(MaterializeRequest::default()).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.status == RunStatus::Succeeded && report.steps.len() == assets.steps(),
        "bench run failed or planned {} steps: {:?}",
        report.steps.len(),
        report.steps.iter().find(|s| s.error.is_some())
    );
    Ok((secs, peak_mib().unwrap_or(f64::NAN), dir, None))
}

/// How a backfill's partitions went into Delta commits: how many commits, and the wall time per
/// partition over the first and the last tenth of the partitions (from the commit files' times: flat
/// if the cost per commit does not grow with the log).
struct CommitProfile {
    commits: usize,
    early_ms: f64,
    late_ms: f64,
}

fn commit_profile(engine: &Engine) -> anyhow::Result<CommitProfile> {
    let key = spine_engine::AssetKey::parse("events")?;
    let mut commits: Vec<(i64, f64, usize)> = Vec::new();
    for (version, path) in engine.warehouse().local_commit_files(&key) {
        let text = std::fs::read_to_string(&path)?;
        let at = std::fs::metadata(&path)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        let partitions = text.lines().filter(|l| l.starts_with("{\"txn\"")).count();
        commits.push((version, at, partitions));
    }
    commits.sort_by_key(|c| c.0);
    let total: usize = commits.iter().map(|c| c.2).sum();
    // The time between the commits holding partitions `from` and `to` (cumulative), per partition.
    let at_partition = |n: usize| {
        let mut seen = 0;
        for c in &commits {
            seen += c.2;
            if seen >= n {
                return (c.1, seen);
            }
        }
        (commits.last().map_or(0.0, |c| c.1), seen)
    };
    let per = |from: usize, to: usize| {
        let ((a, na), (b, nb)) = (at_partition(from.max(1)), at_partition(to));
        if nb > na {
            (b - a) * 1000.0 / (nb - na) as f64
        } else {
            f64::NAN
        }
    };
    Ok(CommitProfile {
        commits: commits.len(),
        early_ms: per(1, total / 10),
        late_ms: per(total - total / 10, total),
    })
}

/// What a materialization workload materializes.
enum Workload {
    /// Unpartitioned SQL assets (key, query).
    Assets(Vec<(String, String)>),
    /// One asset with this many daily partitions, and a rollup.
    DailyPartitions(usize),
    /// A backfill of every daily partition of one asset (this many), this many partitions per run.
    Backfill { days: usize, per_run: Option<usize> },
}

impl Workload {
    fn steps(&self) -> usize {
        match self {
            Workload::Assets(a) => a.len(),
            Workload::DailyPartitions(days) => days + 1,
            Workload::Backfill { days, .. } => *days,
        }
    }
}

pub async fn run(n: usize, plan_n: usize, runs: usize, backfill: usize) -> anyhow::Result<u8> {
    let runs = runs.max(1);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut keep = Vec::new();
    let workloads = [
        (
            format!("chain of {n} SQL assets"),
            Workload::Assets(chain(n)),
            true,
        ),
        (
            format!("fan-out 1 → {n} → 1"),
            Workload::Assets(fanout(n)),
            true,
        ),
        (
            format!("chain of {n}, warehouse fsync off"),
            Workload::Assets(chain(n)),
            false,
        ),
        (
            "365 daily partitions + rollup, one run".to_string(),
            Workload::DailyPartitions(365),
            true,
        ),
        (
            "backfill of 365 daily partitions, one run".to_string(),
            Workload::Backfill {
                days: 365,
                per_run: None,
            },
            true,
        ),
        (
            "backfill of 365 daily partitions, a run each".to_string(),
            Workload::Backfill {
                days: 365,
                per_run: Some(1),
            },
            true,
        ),
        (
            format!("backfill of {backfill} daily partitions, one run"),
            Workload::Backfill {
                days: backfill,
                per_run: None,
            },
            true,
        ),
    ];
    for (name, assets, fsync) in workloads {
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        let mut profiles = Vec::new();
        for _ in 0..runs {
            let (t, p, dir, profile) = materialize_once(&assets, fsync).await?;
            keep.push(dir);
            times.push(t);
            peaks.push(p);
            profiles.extend(profile);
        }
        let t = median(times);
        let commits = if profiles.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.0} ({:.2} → {:.2} ms/partition)",
                median(profiles.iter().map(|p| p.commits as f64).collect()),
                median(profiles.iter().map(|p| p.early_ms).collect()),
                median(profiles.iter().map(|p| p.late_ms).collect()),
            )
        };
        rows.push(vec![
            name,
            assets.steps().to_string(),
            format!("{t:.3} s"),
            format!("{:.2} ms", t * 1000.0 / assets.steps() as f64),
            format!("{:.0} MiB", median(peaks)),
            commits,
        ]);
    }
    // Planning a large graph: load (YAML + SQL parse), validate, select, order.
    let dir = tempfile::tempdir()?;
    write_project(dir.path(), &big_graph(plan_n), 5000, true)?;
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        reset_peak();
        let t = Instant::now();
        let project = load_project(dir.path(), &crate::cmd::kinds())?;
        let last = format!("+g/a{}", plan_n - 1);
        let selected = select(&project, Some(&last))?;
        let order = project.graph.topological_order().unwrap_or_default();
        let plan: Vec<_> = order
            .into_iter()
            .filter(|k| selected.contains(*k))
            .collect();
        anyhow::ensure!(
            plan.len() == plan_n,
            "plan has {} steps, expected {plan_n}",
            plan.len()
        );
        times.push(t.elapsed().as_secs_f64());
        peaks.push(peak_mib().unwrap_or(f64::NAN));
    }
    let t = median(times);
    rows.push(vec![
        format!("load + validate + select + plan {plan_n} assets"),
        plan_n.to_string(),
        format!("{t:.3} s"),
        format!("{:.1} µs", t * 1e6 / plan_n as f64),
        format!("{:.0} MiB", median(peaks)),
        "-".to_string(),
    ]);
    println!("assets bench: median of {runs} run(s) each; cold state and warehouse per run; build profile: {}", if cfg!(debug_assertions) { "debug" } else { "release" });
    crate::output::table(
        &[
            "workload",
            "assets",
            "wall",
            "per asset",
            "peak memory",
            "Delta commits (first → last tenth)",
        ],
        &rows,
    );
    Ok(0)
}
