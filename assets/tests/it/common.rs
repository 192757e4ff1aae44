//! Shared helpers for CLI tests: temporary projects and running the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project with `spine.toml` and the given files (paths relative to the project root).
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Project { dir };
        if !files.iter().any(|(f, _)| *f == "spine.toml") {
            p.write(
                "spine.toml",
                "[project]\nname = \"t\"\n[defaults]\nretry_delay = \"50ms\"\n",
            );
        }
        for (f, text) in files {
            p.write(f, text);
        }
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, file: &str, text: &str) {
        let p = self.path().join(file);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.path().join(file)).expect("remove");
    }

    /// Runs `assets ARGS` in the project.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args)
    }

    /// Every file under .spine/ and warehouse/ with its size and content hash (SQLite's `-shm` index,
    /// which readers write to, left out).
    pub fn snapshot(&self) -> Vec<(PathBuf, u64, u64)> {
        let mut out = Vec::new();
        for d in [".spine", "warehouse"] {
            walk(&self.path().join(d), &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.to_string_lossy().ends_with("-shm") {
            // SQLite's shared-memory WAL index is not stored data: readers update their read marks in
            // it, so merely reading the store may change it.
            continue;
        } else if p.to_string_lossy().ends_with("-wal")
            && std::fs::metadata(&p).is_ok_and(|m| m.len() == 0)
        {
            // An empty WAL holds nothing: whether the last connection to close deleted it or left
            // it (truncated) is not a change to what is stored.
            continue;
        } else {
            let bytes = std::fs::read(&p).unwrap_or_default();
            let mut h: u64 = 1469598103934665603;
            for b in &bytes {
                h = (h ^ *b as u64).wrapping_mul(1099511628211);
            }
            out.push((p, bytes.len() as u64, h));
        }
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assets"))
}

pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_in_env(dir, args, &[])
}

/// `assets ARGS` in `dir` with the test's environment cleared of Spine overrides, then `envs` set.
pub fn assets_in(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> Command {
    let mut c = bin();
    c.args(args)
        .current_dir(dir)
        .env_remove("SPINE_STATE_URL")
        .env_remove("SPINE_WAREHOUSE_URL")
        .env_remove("RUST_LOG")
        .envs(envs.iter().map(|(k, v)| (k, v)));
    c
}

/// Runs `assets ARGS` in `dir` with the test's environment cleared of Spine overrides, then `envs` set.
pub fn run_in_env(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> Run {
    let out: Output = assets_in(dir, args, envs).output().expect("run assets");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `gate` (a command that parks until signalled, then writes the payload's `by` as `approved_by`,
/// and when parking also writes a file that must not be committed) → `after` (SQL reading it).
pub fn gated() -> Project {
    let gate = r#"import os, json
sig = os.environ.get("SPINE_SIGNAL", "")
if not sig:
    print(json.dumps({"type": "wait", "reason": "needs approval"}))
    open(os.path.join(os.environ["SPINE_OUTPUT_DIR"], "ignored.jsonl"), "w").write("{}\n")
else:
    by = json.loads(sig)["by"]
    open(os.path.join(os.environ["SPINE_OUTPUT_DIR"], "a.jsonl"), "w").write(json.dumps({"approved_by": by}) + "\n")
"#;
    Project::new(&[
        ("assets/gate.py", gate),
        (
            "assets/a.yaml",
            "key: gate\nkind: command\ncommand: [python3, gate.py]\n",
        ),
        (
            "assets/b.yaml",
            "key: after\nkind: sql\nquery: SELECT approved_by FROM gate\n",
        ),
    ])
}

/// A four-asset project: a → b → c, a → d.
pub fn diamond() -> Project {
    Project::new(&[
        ("assets/a.yaml", "key: raw/a\nkind: sql\nquery: SELECT value AS id, value * 2 AS x FROM generate_series(1, 100)\n"),
        ("assets/b.yaml", "key: stg/b\nkind: sql\nsql: b.sql\n"),
        ("assets/b.sql", "SELECT id, x + 1 AS x FROM raw.a\n"),
        (
            "assets/more.yaml",
            "assets:\n  - key: marts/c\n    kind: sql\n    query: SELECT SUM(x) AS total FROM stg.b\n  - key: marts/d\n    kind: sql\n    query: SELECT COUNT(*) AS n FROM raw.a\n    tags: [daily]\n",
        ),
    ])
}

/// Steps of a `materialize --json` report as (key, status).
pub fn step_statuses(v: &serde_json::Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

pub fn status_of(v: &serde_json::Value, key: &str) -> String {
    step_statuses(v)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no step {key} in {v}"))
}

/// The freshness state (`fresh`, `stale`, `missing`, …) of each of `keys` in the project's
/// `assets status --json`, run with `envs`.
pub fn states(dir: &Path, envs: &[(&str, String)], keys: &[&str]) -> Vec<String> {
    let st = run_in_env(dir, &["status", "--json"], envs).ok().json();
    keys.iter()
        .map(|k| {
            st.as_array()
                .and_then(|a| a.iter().find(|a| a["key"] == *k))
                .and_then(|a| a["state"].as_str())
                .unwrap_or_else(|| panic!("no asset {k} in {st}"))
                .to_string()
        })
        .collect()
}

/// Polls the run store until `step` is running (or panics after a minute).
pub fn wait_until_running(p: &Project, step: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let query = format!("SELECT status FROM spine.steps WHERE step_id = '{step}'");
    loop {
        let r = p.run(&["sql", "--json", &query]);
        if r.code == 0 && r.stdout.contains("running") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "step {step} never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Runs a Python `script` (an independent reader, installed by .ci/run) with `args` and parses the JSON it
/// prints; fails the test with its stderr when it does not succeed.
pub fn python_json(script: &str, args: &[String]) -> serde_json::Value {
    let py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "the Python reader failed (is it installed? .ci/run installs it):\n{}",
        String::from_utf8_lossy(&py.stderr)
    );
    serde_json::from_slice(&py.stdout).unwrap_or_else(|e| {
        panic!(
            "the Python reader printed no JSON ({e}): {}",
            String::from_utf8_lossy(&py.stdout)
        )
    })
}

/// A small xorshift generator; the seed is printed so a failing trial can be replayed
/// (`SPINE_TEST_SEED`).
pub struct Rng(u64);

impl Rng {
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("SPINE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{test}: SPINE_TEST_SEED={seed}");
        Rng(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Fails when any file under `dir` (the run store, logs, tables) holds `secret`.
pub fn assert_in_no_file(dir: &Path, secret: &str) {
    let out = Command::new("grep")
        .args(["-r", "-l", "-a", secret])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "the secret is in {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
