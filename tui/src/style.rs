//! Formatting shared by every view: state colours, times, durations, numbers, wrapped text. A leaf:
//! it imports no other module of the UI.

use ratatui::style::{Color, Style};

/// The colour of a state (fresh, stale, running, failed, …).
pub fn state_style(state: &str) -> Style {
    let c = match state {
        "fresh" | "succeeded" | "up_to_date" => Color::Green,
        "stale" | "upstream-stale" | "waiting" | "queued" | "pending" => Color::Yellow,
        "failed" | "cancelled" => Color::Red,
        "running" => Color::Cyan,
        _ => Color::Gray,
    };
    Style::default().fg(c)
}

/// `2026-12-03T15:30:45.123Z` → `2026-12-03 15:30:45`.
pub fn short_time(ts: &str) -> String {
    ts.get(..19).unwrap_or(ts).replace('T', " ")
}

pub fn seconds(ts: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// `1.2s`, `3m04s`, `2h05m`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than a line
/// is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && needed > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// `2026-12-07T02:00:00+01:00` → `2026-12-07 02:00 +01:00` (a time on a schedule's clock, with its
/// offset); `…Z` → `… UTC`.
pub fn wall_time(ts: &str) -> String {
    let day_time = short_time(ts);
    let minutes = day_time.get(..16).unwrap_or(&day_time);
    match ts.get(19..) {
        Some("Z") | Some("+00:00") => format!("{minutes} UTC"),
        Some(offset) if offset.len() >= 6 => {
            format!("{minutes} {}", &offset[offset.len() - 6..])
        }
        _ => minutes.to_string(),
    }
}
