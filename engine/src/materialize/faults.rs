//! Between attempts and around commits: the retry delay (exponential backoff with jitter) and the
//! fault points crash tests abort the process at.

use crate::hash::short_hash;
use crate::key::AssetKey;
use std::time::Duration;

/// Fault injection for crash tests: `SPINE_FAULT=crash_after_commit:<asset key>` aborts the process right
/// after that asset's Delta commit, before the run store records it (the window recovery must cover);
/// `crash_before_commit:<asset key>` just before the commit. `hang_…` instead of `crash_…` stops the
/// process there for good (printing `SPINE_FAULT: hanging`), for a test to kill it with SIGKILL.
pub(super) fn fault_point(name: &str, key: &AssetKey) {
    if let Ok(spec) = std::env::var("SPINE_FAULT") {
        if spec.split_once(':') == Some((name, key.as_str())) {
            eprintln!("SPINE_FAULT: aborting at {name} for {key}");
            std::process::abort();
        }
        let hang = name.replacen("crash_", "hang_", 1);
        if spec.split_once(':') == Some((hang.as_str(), key.as_str())) {
            eprintln!("SPINE_FAULT: hanging at {hang} for {key}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}

/// Exponential backoff with ±50% jitter: `base * 2^(attempt-1) * (0.5..1.5)`, capped at 5 minutes.
pub fn backoff(base: Duration, attempt: u32, salt: &str) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt - 1).min(16));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let h = short_hash(format!("{salt}{attempt}{nanos}").as_bytes());
    let frac = u64::from_str_radix(&h[..8], 16).unwrap_or(0) as f64 / u32::MAX as f64;
    exp.mul_f64(0.5 + frac).min(Duration::from_secs(300))
}
