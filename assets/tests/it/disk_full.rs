//! A full disk, for real: the project lives on a small tmpfs (mounting needs root, as CI and these
//! machines run; elsewhere the test says so and passes without checking anything).
//!
//! - A step whose data does not fit fails with the OS's message, its unfinished file is removed, and
//!   the store records the step and the run as failed; what was stored before is intact.
//! - A disk filled by something else, so the store itself cannot write: the run fails at once with a
//!   clear "free space" message (no 30 s lock wait), and once space is freed the next run settles it.
//! - A disk full only for a moment: the run whose step end was lost is settled once there is room.
//! - A disk already full before a run: a clear error, quickly, and nothing stored changes.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs of `mib` MiB mounted on a fresh folder; unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_bytes(&self) -> u64 {
        let c = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statvfs fills the struct it is given; the path is a valid C string.
        unsafe {
            let mut s: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
            s.f_bavail as u64 * s.f_frsize as u64
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

const ASSETS: &str = "assets:
  - key: small
    kind: sql
    query: SELECT 1 AS n
  - key: big
    kind: sql
    query: SELECT value, md5(CAST(value AS VARCHAR)) || md5(CAST(value * 7 AS VARCHAR)) AS s FROM generate_series(1, 1000000)
  - key: hog
    kind: command
    command: [sh, -c, \"dd if=/dev/zero of=$SPINE_PROJECT_DIR/../hog bs=1M count=64 2>/dev/null; exit 0\"]
  - key: brief_hog
    kind: command
    command: [sh, -c, \"dd if=/dev/zero of=$SPINE_PROJECT_DIR/../hog bs=1M count=64 2>/dev/null; (sleep 0.3; rm -f $SPINE_PROJECT_DIR/../hog) >/dev/null 2>&1 & exit 0\"]
";

fn project_on(disk: &SmallDisk) -> PathBuf {
    let root = disk.path().join("p");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("spine.toml"), "[project]\nname = \"t\"\n").unwrap();
    std::fs::write(root.join("assets/a.yaml"), ASSETS).unwrap();
    root
}

fn runs(root: &Path) -> Vec<serde_json::Value> {
    run_in(root, &["runs", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn data_that_does_not_fit_fails_the_step_and_the_store_says_so() {
    let Some(disk) = SmallDisk::mount(12) else {
        return;
    };
    let root = project_on(&disk);
    run_in(&root, &["materialize", "small"]).ok();
    let free_before = disk.free_bytes();
    let r = run_in(&root, &["materialize", "big"]);
    r.code(1);
    assert!(
        r.stdout.contains("No space left on device"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    // The unfinished data file is gone: the space is back.
    assert!(
        disk.free_bytes() + 512 * 1024 > free_before,
        "{} of {free_before} bytes free",
        disk.free_bytes()
    );
    let latest = &runs(&root)[0];
    assert_eq!(latest["status"], "failed", "{latest}");
    let id = latest["run_id"].as_str().unwrap();
    let steps = run_in(&root, &["run", id, "--json"]).ok().json();
    assert_eq!(steps["steps"][0]["status"], "failed", "{steps}");
    let status = run_in(&root, &["status", "--json"]).ok().json();
    let state = |k: &str| {
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["state"].clone())
            .unwrap()
    };
    assert_eq!(
        (state("small"), state("big")),
        ("fresh".into(), "missing".into())
    );
    let read = run_in(&root, &["sql", "--json", "SELECT n FROM small"])
        .ok()
        .json();
    assert_eq!(read, serde_json::json!([{"n": 1}]));
}

#[test]
fn a_store_that_cannot_write_fails_fast_and_the_next_run_settles_it() {
    let Some(disk) = SmallDisk::mount(12) else {
        return;
    };
    let root = project_on(&disk);
    run_in(&root, &["materialize", "small"]).ok();
    // The command fills the disk outside Spine's folders, so nothing Spine removes makes room.
    let t = Instant::now();
    let r = run_in(&root, &["materialize", "hog"]);
    let took = t.elapsed();
    r.code(1);
    assert!(
        r.stderr.contains("free space and run again"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        took < Duration::from_secs(25),
        "it waited on the store for {took:?} (the busy timeout is 30 s)"
    );
    // Nothing could be written, so the run is still `running` — and labelled, its process gone.
    let hog_run = runs(&root)[0].clone();
    let id = hog_run["run_id"].as_str().unwrap().to_string();
    let listed = run_in(&root, &["runs"]).ok().stdout.clone();
    assert!(listed.contains("running (process died)"), "{listed}");
    // Room again: the next run settles it as failed, with its step.
    std::fs::remove_file(disk.path().join("hog")).unwrap();
    run_in(&root, &["materialize", "small"]).ok();
    let settled = run_in(&root, &["run", &id, "--json"]).ok().json();
    assert_eq!(settled["run"]["status"], "failed", "{settled}");
    assert_eq!(settled["steps"][0]["status"], "failed", "{settled}");
}

/// The disk is full only for a moment: the step's end cannot be written, but the run is settled with
/// the space freed, honestly (no write reported done that was lost), and nothing is left `running`.
#[test]
fn a_run_whose_step_end_was_not_written_is_settled_once_there_is_room() {
    let Some(disk) = SmallDisk::mount(12) else {
        return;
    };
    let root = project_on(&disk);
    run_in(&root, &["materialize", "small"]).ok();
    let r = run_in(&root, &["materialize", "brief_hog"]);
    r.code(1);
    let latest = runs(&root)[0].clone();
    assert_eq!(latest["status"], "failed", "{latest}\n{}", r.stderr);
    assert!(
        latest["error"]
            .as_str()
            .unwrap()
            .contains("the run store could not record how some steps ended"),
        "{latest}"
    );
    let id = latest["run_id"].as_str().unwrap();
    let steps = run_in(&root, &["run", id, "--json"]).ok().json();
    assert_eq!(steps["steps"][0]["status"], "failed", "{steps}");
    assert!(
        steps["steps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("the run store failed before this step committed"),
        "{steps}"
    );
}

#[test]
fn a_disk_full_before_the_run_is_a_clear_error_and_changes_nothing() {
    let Some(disk) = SmallDisk::mount(12) else {
        return;
    };
    let root = project_on(&disk);
    run_in(&root, &["materialize", "small"]).ok();
    let filler = disk.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        disk.free_bytes() < 64 * 1024,
        "{} bytes free",
        disk.free_bytes()
    );
    let before = std::fs::read(root.join(".spine/state.db")).unwrap();
    let t = Instant::now();
    let r = run_in(&root, &["materialize", "small", "--force"]);
    r.code(1);
    assert!(
        r.stderr.contains("free space and run again"),
        "{}",
        r.stderr
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(std::fs::read(root.join(".spine/state.db")).unwrap(), before);
    std::fs::remove_file(&filler).unwrap();
    let v = run_in(&root, &["materialize", "small", "--force", "--json"])
        .ok()
        .json();
    assert_eq!(v["status"], "succeeded", "{v}");
}
