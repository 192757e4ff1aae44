//! Logging: `tracing` to stderr, filtered by RUST_LOG (default: warnings; `-v` adds Spine's own info
//! lines, `-vv` its debug lines, `-vvv` everyone's debug lines), as text or JSON lines. Run and step ids
//! ride on spans, so every line inside a step carries them. Colours only on a terminal, never with
//! `NO_COLOR` set. Values from the environment are masked in every line (`spine_engine::redact`).

use crate::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Spine's own crates: `-v` and `-vv` raise only these, so dependency internals stay quiet.
const OWN_CRATES: [&str; 3] = ["spine_engine", "spine_jobs", "assets"];

/// The filter for a `-v` count when RUST_LOG is not set: Spine's own warnings, then its info and debug
/// lines; dependencies only from `-vvv`. For human output, step outcomes
/// (`spine::outcome`) are left to the progress lines that already show them, and a program's own log
/// lines (`spine::step`, all kept in the run's event log) appear from `-v` on; JSON log lines keep both.
pub fn default_filter(verbose: u8, human: bool) -> String {
    let own = |level: &str| {
        OWN_CRATES
            .iter()
            .map(|c| format!("{c}={level}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // Dependencies stay quiet below -vvv: their failures reach the user through Spine's own error
    // messages (Delta's kernel, for one, logs every error it returns, with a backtrace).
    let base = match verbose {
        0 => format!("off,{},spine=warn", own("warn")),
        1 => format!("off,{},spine::step=info", own("info")),
        2 => format!("off,{},spine::step=debug", own("debug")),
        _ => "debug".into(),
    };
    match (human, verbose) {
        (true, 0) => format!("{base},spine::step=off,spine::outcome=off"),
        (true, _) => format!("{base},spine::outcome=off"),
        (false, _) => base,
    }
}

/// Whether to colour stderr: only on a terminal and without `NO_COLOR` (https://no-color.org).
pub fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the subscriber.
pub fn init(format: LogFormat, verbose: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose, format == LogFormat::Text)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_stderr())
        .with_writer(|| Redacting(std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Writes log lines with secrets masked (see `spine_engine::redact`): the formatter writes each line
/// in one call.
struct Redacting<W: std::io::Write>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(spine_engine::redact::redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_raises_only_our_crates_until_vvv() {
        let quiet = default_filter(0, false);
        assert!(
            quiet.starts_with("off,") && quiet.contains("spine_engine=warn"),
            "{quiet}"
        );
        let v = default_filter(1, true);
        assert!(v.starts_with("off,") && v.contains("spine_engine=info"));
        assert!(!v.contains("datafusion") && !v.contains("=debug"));
        assert!(default_filter(0, true).contains("spine::step=off"));
        assert!(default_filter(1, true).ends_with("spine::outcome=off"));
        assert!(default_filter(2, false).contains("spine_jobs=debug"));
        assert_eq!(default_filter(3, false), "debug");
        for n in 0..4 {
            for human in [true, false] {
                assert!(EnvFilter::try_new(default_filter(n, human)).is_ok());
            }
        }
    }
}
