//! Aligned text tables and JSON printing.

use spine_engine::store::SHORT_ID_LEN;
use spine_engine::RunId;

/// Prints rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let s: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Milliseconds as a short human duration.
pub fn millis(ms: u128) -> String {
    if ms >= 60_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// The shortest prefix of a run id that names it alone, for printing (falls back to the fixed-length
/// prefix if the store cannot be asked).
pub async fn short_run(store: &dyn spine_engine::store::ReadStore, id: &RunId) -> String {
    match store.short_run_id(id).await {
        Ok(s) => s,
        Err(_) => id.as_str()[..id.as_str().len().min(SHORT_ID_LEN)].to_string(),
    }
}
