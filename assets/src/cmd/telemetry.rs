//! Logging: `tracing` to stderr, filtered by RUST_LOG (default: warnings, or info/debug with -v/-vv), as
//! text or JSON lines. Run and step ids ride on spans, so every line inside a step carries them.

use crate::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber.
pub fn init(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,datafusion=warn,deltalake=warn,sqlx=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}
