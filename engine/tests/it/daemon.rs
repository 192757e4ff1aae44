//! The daemon over a simulated week (a manual clock, no sleeping), against the real SQLite store and
//! Delta tables: each schedule tick is launched exactly once through a restart, a second daemon
//! evaluating at the same moment, and a 31-hour outage (caught up per tick, or skipped to the latest);
//! `partition: latest` runs the partition that ended before the tick. One daemon lock per project.

use chrono::{DateTime, Duration as Days, Utc};
use spine_engine::clock::ManualClock;
use spine_engine::kinds::KindRegistry;
use spine_engine::store::RunStatus;
use spine_engine::{CancellationToken, Engine, ExecuteOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const ORDERS: &str = "key: orders
kind: sql
partitions:
  daily: {start: 2026-02-01, timezone: Europe/Berlin}
query: SELECT 1 AS n
";

const STAMP: &str = "key: stamp
kind: sql
query: SELECT 1 AS v
";

const SCHEDULES: &str = "schedules:
  - name: nightly
    cron: \"0 2 * * *\"
    timezone: Europe/Berlin
    select: orders
    partition: latest
    catch_up: all
  - name: six_hourly
    cron: \"0 */6 * * *\"
    select: stamp
    catch_up: skip
";

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::create_dir_all(dir.join("schedules")).unwrap();
    std::fs::write(dir.join("spine.toml"), "[project]\nname = \"d\"\n").unwrap();
    std::fs::write(dir.join("assets/orders.yaml"), ORDERS).unwrap();
    std::fs::write(dir.join("assets/stamp.yaml"), STAMP).unwrap();
    std::fs::write(dir.join("schedules/all.yaml"), SCHEDULES).unwrap();
}

async fn engine(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::load(dir, KindRegistry::builtin())
        .await
        .unwrap()
        .with_clock(clock.clone())
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_simulated_week_launches_each_tick_once_through_restarts_and_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path());
    let clock = Arc::new(ManualClock::new(start()));
    let mut daemon = engine(dir.path(), &clock).await;
    let opts = ExecuteOptions::default();
    let stop = CancellationToken::new();
    let first = daemon.daemon_pass(&opts, &stop).await.unwrap();
    assert_eq!(first.ticks.len(), 2, "each schedule starts: {first:?}");
    assert!(first.ticks.iter().all(|t| t.status == "started"));
    let mut statuses = Vec::new();
    for hour in 1..=168 {
        clock.advance(Duration::from_secs(3600));
        if (100..=130).contains(&hour) {
            continue; // the daemon is down
        }
        if hour == 72 {
            // Restart: a new process with the same store.
            daemon = engine(dir.path(), &clock).await;
        }
        let pass = daemon.daemon_pass(&opts, &stop).await.unwrap();
        statuses.extend(pass.runs.iter().map(|(_, s)| *s));
        if hour == 50 {
            // A second daemon evaluating at the same moment finds nothing left to launch.
            let other = engine(dir.path(), &clock).await;
            let again = other.daemon_pass(&opts, &stop).await.unwrap();
            assert!(again.ticks.is_empty() && again.runs.is_empty(), "{again:?}");
        }
    }
    assert!(
        statuses.iter().all(|s| *s == RunStatus::Succeeded),
        "{statuses:?}"
    );
    let ticks = daemon.store().ticks(None, 1000).await.unwrap();
    let launched = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = ticks
            .iter()
            .filter(|t| t.schedule == name && t.status == "launched")
            .map(|t| t.tick_at.clone())
            .collect();
        v.sort();
        v
    };
    // 02:00 in Berlin is 01:00 UTC in March: every day of the week, the outage's day caught up.
    let nightly = launched("nightly");
    let want: Vec<String> = (0..7)
        .map(|d| {
            (start() + Days::days(d) + Days::hours(1))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect();
    assert_eq!(nightly, want);
    // Every 6 hours for 168 hours is 28 ticks; the outage (hours 100-130) missed 102, 108, 114, 120
    // and 126: skipped but for the latest, launched when the daemon came back.
    let six = launched("six_hourly");
    assert_eq!(six.len(), 28 - 4, "{six:?}");
    let caught: Vec<_> = ticks
        .iter()
        .filter(|t| t.reason.as_deref() == Some("4 missed tick(s) skipped (catch_up: skip)"))
        .collect();
    assert_eq!(caught.len(), 1, "{caught:?}");
    assert_eq!(
        caught[0].tick_at,
        (start() + Days::hours(126))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    );
    // Each nightly run materialized the Berlin day that had just ended, once.
    let mut per_day: BTreeMap<String, usize> = BTreeMap::new();
    for t in ticks
        .iter()
        .filter(|t| t.schedule == "nightly" && t.status == "launched")
    {
        let run = t.run_id.clone().unwrap();
        let record = daemon.store().get_run(run.as_str()).await.unwrap();
        assert_eq!(record.launched_by.as_deref(), Some("schedule:nightly"));
        let steps = daemon.store().steps(&run).await.unwrap();
        assert_eq!(steps.len(), 1, "{steps:?}");
        *per_day.entry(steps[0].step_id.clone()).or_default() += 1;
    }
    let days: Vec<String> = (1..=7).map(|d| format!("orders[2026-03-0{d}]")).collect();
    assert_eq!(per_day.keys().cloned().collect::<Vec<_>>(), days);
    assert!(per_day.values().all(|n| *n == 1), "{per_day:?}");
    let mats = daemon
        .store()
        .materializations(&spine_engine::AssetKey::parse("orders").unwrap(), 100)
        .await
        .unwrap();
    assert_eq!(mats.len(), 7, "{mats:?}");
}

#[tokio::test]
async fn one_daemon_holds_the_lock_until_its_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path());
    let clock = Arc::new(ManualClock::new(start()));
    let a = engine(dir.path(), &clock).await;
    let b = engine(dir.path(), &clock).await;
    a.take_daemon_lock("a").await.unwrap();
    a.take_daemon_lock("a").await.expect("renewing is allowed");
    let refused = b.take_daemon_lock("b").await.expect_err("a holds it");
    assert!(refused.to_string().contains("E0416"), "{refused}");
    // a stops renewing (hung, or on a machine that went away): after its lease, b takes over.
    clock.advance(Duration::from_secs(59));
    assert!(b.take_daemon_lock("b").await.is_err());
    clock.advance(Duration::from_secs(2));
    b.take_daemon_lock("b").await.unwrap();
    assert!(a.take_daemon_lock("a").await.is_err());
    b.release_daemon_lock("b").await.unwrap();
    a.take_daemon_lock("a").await.unwrap();
}
