//! `assets ui` end to end: the real binary in a tmux pseudo-terminal; keys open the lineage of an
//! asset and a run's timeline, a run started from another terminal shows up live, `m` then `d`
//! materializes an asset with its downstream in a process of its own, and `q` quits, leaving the
//! shell's screen.

use crate::common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pane's text once it contains every one of `want` (panics after 20 s with the screen).
fn screen_with(session: &str, want: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let s = tmux(&["capture-pane", "-p", "-t", session]);
        if want.iter().all(|w| s.contains(w)) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the screen never showed {want:?}:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn keys(session: &str, keys: &[&str]) {
    for k in keys {
        tmux(&["send-keys", "-t", session, k]);
        std::thread::sleep(Duration::from_millis(150));
    }
}

#[test]
fn the_ui_shows_lineage_and_a_live_run_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is missing: .ci/run installs it"
        );
        eprintln!("skipped: no tmux");
        return;
    }
    let p = diamond();
    p.run(&["materialize"]).ok();
    let session = format!("spine-ui-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_assets");
    let command = format!(
        "cd '{}' && '{bin}' ui; echo UI-EXITED-$?; sleep 60",
        p.path().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            tmux(&["kill-session", "-t", &self.0]);
        }
    }
    let _kill = Kill(session.clone());
    let s = screen_with(&session, &["1 Assets", "raw/a", "marts/c", "fresh"]);
    assert!(s.contains("▶ raw/a"), "the first asset is selected:\n{s}");
    // Lineage of stg/b: raw/a upstream, marts/c downstream.
    keys(&session, &["Down", "2"]);
    let s = screen_with(&session, &["selected", "upstream 1", "downstream 1"]);
    assert!(
        s.contains("■ stg/b") && s.contains("raw/a") && s.contains("marts/c") && s.contains('╔'),
        "{s}"
    );
    assert!(
        !s.contains("marts/d"),
        "marts/d is not a neighbour of stg/b:\n{s}"
    );
    // A run from another terminal appears in Runs; enter opens its timeline.
    p.run(&["materialize", "--force", "marts/c"]).ok();
    keys(&session, &["3"]);
    let s = screen_with(&session, &["runs (2)", "succeeded"]);
    assert!(s.contains("marts/c"), "{s}");
    keys(&session, &["Enter"]);
    let s = screen_with(&session, &["TIMELINE", "log ("]);
    assert!(s.contains("marts/c") && s.contains("succeeded"), "{s}");
    // From Lineage, `m` asks; `d` materializes stg/b and its downstream in a process of its own, and
    // the UI opens the new run.
    keys(&session, &["Escape", "2", "m"]);
    screen_with(&session, &["Materialize stg/b?", "and its 1 downstream"]);
    keys(&session, &["d"]);
    let s = screen_with(
        &session,
        &["materializing stg/b+", "TIMELINE", "run succeeded"],
    );
    assert!(s.contains("marts/c"), "{s}");
    let runs = p.run(&["runs", "--json"]).ok().json();
    assert_eq!(runs[0]["selection"], "stg/b+", "{runs}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
    // Esc goes back, ? shows the keys, q quits with status 0.
    keys(&session, &["Escape", "?"]);
    screen_with(&session, &["keys (any key closes)"]);
    keys(&session, &["Escape", "q"]);
    let s = screen_with(&session, &["UI-EXITED-0"]);
    assert!(
        !s.contains("1 Assets"),
        "the terminal's own screen is back:\n{s}"
    );
}
