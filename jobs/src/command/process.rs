//! The program's process: started as the leader of its own process group, so that everything it starts
//! (`sh -c 'sleep 15; …'` runs `sleep` as a grandchild) is ended with it. When the step is abandoned
//! before the program exits (Ctrl-C, a timeout), [`ProcessGroup`]'s drop sends SIGTERM to the whole group
//! and, after a grace period, SIGKILL to whatever is left. On Linux the leader also dies with Spine's
//! process (`PR_SET_PDEATHSIG`), so a `kill -9` of Spine does not leave it running.
//!
//! Output is read as bytes and decoded lossily, so a program that prints bytes that are not UTF-8 is
//! logged, not failed.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// How long a program gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Threads that are still ending abandoned groups; [`wait_for_abandoned_groups`] joins them.
static ENDING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Configures `cmd` to start a new process group (and, on Linux, to die with this process).
pub fn isolate(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    {
        cmd.process_group(0);
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
        // functions (prctl, getppid, _exit).
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// Ends the program's process group unless disarmed (the program exited on its own).
pub struct ProcessGroup {
    pgid: Option<i32>,
}

impl ProcessGroup {
    /// Guards the group led by the process `pid`.
    pub fn new(pid: Option<u32>) -> Self {
        ProcessGroup {
            pgid: pid.and_then(|p| i32::try_from(p).ok()),
        }
    }

    /// The program exited: nothing to end.
    pub fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid.take() else {
            return;
        };
        signal_group(pgid, Signal::Term);
        let ending = std::thread::spawn(move || {
            let deadline = Instant::now() + GRACE;
            while group_alive(pgid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(25));
            }
            if group_alive(pgid) {
                tracing::warn!(
                    pgid,
                    "the command's processes ignored SIGTERM; sending SIGKILL"
                );
                signal_group(pgid, Signal::Kill);
            }
        });
        if let Ok(mut v) = ENDING.lock() {
            v.retain(|h| !h.is_finished());
            v.push(ending);
        }
    }
}

/// Blocks until every abandoned process group has ended (at most [`GRACE`] and a little): call it
/// before the process exits after a cancelled run, so that SIGKILL is still sent to stubborn programs.
pub fn wait_for_abandoned_groups() {
    let handles = match ENDING.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(_) => return,
    };
    for h in handles {
        let _ = h.join();
    }
}

enum Signal {
    Term,
    Kill,
}

fn signal_group(pgid: i32, signal: Signal) {
    #[cfg(unix)]
    {
        let sig = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // SAFETY: killpg has no memory-safety preconditions; a stale group id fails with ESRCH.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
    #[cfg(not(unix))]
    let _ = (pgid, signal);
}

fn group_alive(pgid: i32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only checks that the group exists.
        unsafe { libc::killpg(pgid, 0) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = pgid;
        false
    }
}

/// Reads one line as bytes and decodes it lossily (without the line end); `None` at the end.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<String>> {
    buf.clear();
    if reader.read_until(b'\n', buf).await? == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(buf).into_owned()))
}

/// The level a program's stderr line states (Python logging's default `WARNING:root:…`, `[ERROR] …`,
/// `error: …`), or `info` when it states none: stderr is where many programs write ordinary logs.
pub fn stderr_level(line: &str) -> &'static str {
    let head = line.trim_start().trim_start_matches('[');
    let word: String = head
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let after = head[word.len()..].chars().next();
    if !matches!(after, Some(':' | ']' | ' ')) {
        return "info";
    }
    match word.to_ascii_lowercase().as_str() {
        "debug" | "trace" => "debug",
        "warn" | "warning" => "warn",
        "error" | "critical" | "fatal" | "panic" => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_levels_come_only_from_what_the_line_says() {
        assert_eq!(stderr_level("WARNING:root:disk almost full"), "warn");
        assert_eq!(stderr_level("ERROR:app:boom"), "error");
        assert_eq!(stderr_level("CRITICAL:app:boom"), "error");
        assert_eq!(stderr_level("INFO:app:fetched 3 rows"), "info");
        assert_eq!(stderr_level("DEBUG:app:x"), "debug");
        assert_eq!(stderr_level("[WARN] slow"), "warn");
        assert_eq!(stderr_level("error: no such file"), "error");
        assert_eq!(stderr_level("Traceback (most recent call last):"), "info");
        assert_eq!(stderr_level("fetched 1200 rows"), "info");
        assert_eq!(stderr_level("errors were fixed"), "info");
        assert_eq!(stderr_level(""), "info");
    }

    #[tokio::test]
    async fn lines_are_decoded_lossily() {
        let data: &[u8] = b"ok\n\xff\xfebad\r\nlast";
        let mut r = tokio::io::BufReader::new(data);
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut r, &mut buf).await.unwrap().unwrap(), "ok");
        assert_eq!(
            next_line(&mut r, &mut buf).await.unwrap().unwrap(),
            "\u{fffd}\u{fffd}bad"
        );
        assert_eq!(next_line(&mut r, &mut buf).await.unwrap().unwrap(), "last");
        assert!(next_line(&mut r, &mut buf).await.unwrap().is_none());
    }

    /// Property: what a program prints never panics the readers (level detection on stderr, protocol
    /// parsing on stdout), whatever the bytes. `SPINE_FUZZ_CASES` raises the count.
    #[test]
    fn random_program_output_never_panics() {
        const PIECES: [&str; 16] = [
            "{",
            "}",
            "\"type\"",
            ":",
            "\"check\"",
            "\"log\"",
            "\"metadata\"",
            ",",
            "\"passed\"",
            "true",
            "0",
            "\"severity\"",
            "\"ERROR\"",
            "WARNING:",
            "[",
            "\u{fffd}",
        ];
        let cases: usize = std::env::var("SPINE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..cases {
            let n = (next() % 24) as usize;
            let line: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let _ = stderr_level(&line);
            let _ = serde_json::from_str::<spine_schemas::events::CommandMessage>(&line);
        }
    }
}
