//! A sensor on a folder of landed files, through the daemon against the real SQLite store and Delta
//! tables: the objects modified after its cursor become one forced run, each new file a dynamic
//! partition; nothing is launched twice through a restart; a file written again runs again; names
//! the pattern does not match and a folder that is not there launch nothing. Bad sensors are E0221.

use spine_engine::kinds::KindRegistry;
use spine_engine::store::RunStatus;
use spine_engine::{CancellationToken, Engine, ExecuteOptions};
use std::path::Path;
use std::time::{Duration, SystemTime};

const FILES: &str = "key: files
kind: sql
partitions: {dynamic: landed}
query: SELECT '{{ partition_key }}' AS file, 1 AS n
";

const COUNT: &str = "key: file_count
kind: sql
query: SELECT COUNT(*) AS files FROM files
";

const SENSOR: &str = "name: landed_files
objects: landing/
pattern: \"*.csv\"
select: files+
add_partitions: landed
";

fn write_project(dir: &Path, sensor: &str) {
    for d in ["assets", "sensors", "landing"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("spine.toml"), "[project]\nname = \"s\"\n").unwrap();
    std::fs::write(dir.join("assets/files.yaml"), FILES).unwrap();
    std::fs::write(dir.join("assets/file_count.yaml"), COUNT).unwrap();
    std::fs::write(dir.join("sensors/landed.yaml"), sensor).unwrap();
}

/// Lands `name` with a modification time `secs` after a fixed instant.
fn land(dir: &Path, name: &str, secs: u64) {
    let p = dir.join("landing").join(name);
    std::fs::write(&p, "id\n1\n").unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 + secs);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

async fn pass(e: &Engine) -> spine_engine::DaemonPass {
    e.daemon_pass(&ExecuteOptions::default(), &CancellationToken::new())
        .await
        .unwrap()
}

/// The step ids a tick's run ran, with how they ended.
async fn ran(e: &Engine, p: &spine_engine::DaemonPass) -> Vec<String> {
    let mut out = Vec::new();
    for (run, status) in &p.runs {
        assert_eq!(*status, RunStatus::Succeeded);
        for s in e.store().steps(run).await.unwrap() {
            out.push(format!("{} {}", s.step_id, s.status));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn new_objects_launch_one_run_each_once_through_restarts() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), SENSOR);
    land(dir.path(), "a.csv", 0);
    land(dir.path(), "b.csv", 1);
    land(dir.path(), "notes.txt", 2);
    let e = Engine::load(dir.path(), KindRegistry::builtin())
        .await
        .unwrap();
    let first = pass(&e).await;
    assert_eq!(first.ticks.len(), 1, "{first:?}");
    assert_eq!(first.ticks[0].schedule, "landed_files");
    assert_eq!(
        first.ticks[0].reason.as_deref(),
        Some("2 new object(s): a.csv, b.csv")
    );
    assert_eq!(
        ran(&e, &first).await,
        [
            "file_count succeeded",
            "files[a] succeeded",
            "files[b] succeeded"
        ]
    );

    let idle = pass(&e).await;
    assert!(idle.ticks.is_empty() && idle.runs.is_empty(), "{idle:?}");

    land(dir.path(), "c.csv", 3);
    let third = pass(&e).await;
    assert_eq!(third.ticks.len(), 1);
    assert_eq!(
        ran(&e, &third).await,
        ["file_count succeeded", "files[c] succeeded"]
    );

    // A restarted daemon (a new process) has nothing left to launch.
    let restarted = Engine::load(dir.path(), KindRegistry::builtin())
        .await
        .unwrap();
    let again = pass(&restarted).await;
    assert!(again.ticks.is_empty() && again.runs.is_empty(), "{again:?}");

    // A file written again (newer modification time) is new again, and its partition runs although
    // nothing Spine can see changed (sensor runs are forced).
    land(dir.path(), "a.csv", 10);
    let rewritten = pass(&restarted).await;
    assert_eq!(
        ran(&restarted, &rewritten).await,
        ["file_count succeeded", "files[a] succeeded"]
    );
    let rows = spine_engine::query::run_sql(&restarted, "SELECT files FROM file_count")
        .await
        .unwrap();
    let n = rows[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 3, "a, b and c each once");
    let ticks = restarted
        .store()
        .ticks(Some("landed_files"), 10)
        .await
        .unwrap();
    assert_eq!(ticks.len(), 3, "{ticks:?}");
}

#[tokio::test]
async fn a_folder_that_is_not_there_launches_nothing_and_keeps_the_daemon_going() {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), &SENSOR.replace("landing/", "nowhere/"));
    let e = Engine::load(dir.path(), KindRegistry::builtin())
        .await
        .unwrap();
    let p = pass(&e).await;
    assert!(p.ticks.is_empty() && p.runs.is_empty(), "{p:?}");
    let s = &e.project().sensors[0];
    let err = e.sensed_objects(s).await.unwrap_err().to_string();
    assert!(
        err.contains("E0221") && err.contains("no such folder"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_sensors_are_refused_with_e0221() {
    for (sensor, why) in [
        (
            SENSOR.replace("landed\n", "nope\n"),
            "not a dynamic partition set",
        ),
        (SENSOR.replace("files+", "ghost"), "ghost"),
        (SENSOR.replace("\"*.csv\"", "a/b.csv"), "no '/'"),
        (SENSOR.replace("landed_files", "automation"), "reserved"),
        (format!("{SENSOR}every: 5m\n"), "unknown field"),
        ("sensors: {name: x}\n".to_string(), "must be a list"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), &sensor);
        let err = match Engine::load(dir.path(), KindRegistry::builtin()).await {
            Ok(_) => panic!("{sensor}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("E0221") && err.contains(why),
            "{sensor}: {err}"
        );
        assert!(err.contains("sensors/landed.yaml"), "{err}");
    }
    // A sensor and a schedule share the ticks' history, so not a name.
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), SENSOR);
    std::fs::create_dir_all(dir.path().join("schedules")).unwrap();
    std::fs::write(
        dir.path().join("schedules/s.yaml"),
        "name: landed_files\ncron: \"0 2 * * *\"\n",
    )
    .unwrap();
    let err = Engine::load(dir.path(), KindRegistry::builtin())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("names another sensor or schedule"), "{err}");
}
