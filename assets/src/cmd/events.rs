//! `assets events tail [--after ID] [--limit N] [--follow]`: the event log of every run, in order, as
//! lines or (`--json`) one JSON object per event — with `SPINE_EVENT_KEY` set, each carries `sig`,
//! HMAC-SHA256 under that key over the event's canonical JSON (keys sorted, `sig` left out).
//! `assets events verify` reads such lines on stdin and names the first event whose signature is
//! missing or wrong.

use serde_json::{Map, Value};
use spine_engine::store::EventRecord;
use std::io::BufRead;
use std::path::Path;

/// The signing key's variable.
pub const KEY_VAR: &str = "SPINE_EVENT_KEY";

fn key() -> Option<String> {
    let k = std::env::var(KEY_VAR).ok().filter(|k| !k.is_empty())?;
    spine_engine::redact::register(&k);
    Some(k)
}

/// `v` as text with every object's keys sorted: what a signature covers.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&o[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn signature(key: &str, event: &Map<String, Value>) -> String {
    let mut unsigned = event.clone();
    unsigned.remove("sig");
    spine_engine::hash::hmac_sha256_hex(
        key.as_bytes(),
        canonical(&Value::Object(unsigned)).as_bytes(),
    )
}

/// An event as it leaves the process: the stored record as it serializes (`id`, `ts`, `run_id`,
/// `step_id`, `kind`, `level`, `message`, `data`), signed when there is a key.
fn envelope(e: &EventRecord, key: Option<&str>) -> Map<String, Value> {
    let mut m = match serde_json::to_value(e) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(k) = key {
        let sig = signature(k, &m);
        m.insert("sig".into(), sig.into());
    }
    m
}

/// `assets events tail`.
pub async fn tail(
    root: &Path,
    after: i64,
    limit: i64,
    follow: bool,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let key = key();
    let reader = engine.reader();
    let stop = super::materialize::ctrl_c_token("tail");
    let mut after = after;
    let mut left = if follow { i64::MAX } else { limit.max(0) };
    loop {
        let page = reader.events_since(after, left.min(1000)).await?;
        for e in &page {
            after = e.id;
            left -= 1;
            if json {
                println!("{}", Value::Object(envelope(e, key.as_deref())));
            } else {
                let step = e.event.step_id.as_deref().unwrap_or("-");
                println!(
                    "{:>6} {} {} {:<5} {:<20} {step}: {}",
                    e.id, e.ts, e.event.run_id, e.event.level, e.event.kind, e.event.message
                );
            }
        }
        if left <= 0 || stop.is_cancelled() || (page.is_empty() && !follow) {
            break;
        }
        if page.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    engine.close().await;
    Ok(0)
}

/// `assets events verify` (events as JSON lines on stdin).
pub fn verify(json: bool) -> anyhow::Result<u8> {
    let Some(key) = key() else {
        let e = spine_engine::DefinitionError::new(
            "E0104",
            format!("{KEY_VAR} is not set: there is no key to verify signatures with"),
        )
        .hint("set it to the key the events were signed with");
        return Err(spine_engine::EngineError::from(e).into());
    };
    let mut n = 0;
    let mut bad: Option<(usize, String, String)> = None;
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let id_of =
            |m: &Map<String, Value>| m.get("id").map(|v| v.to_string()).unwrap_or("?".into());
        let why = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => match m.get("sig").and_then(Value::as_str) {
                None => Some((id_of(&m), "unsigned".to_string())),
                Some(sig) if sig != signature(&key, &m) => Some((
                    id_of(&m),
                    "its signature does not match: changed, or signed with another key".into(),
                )),
                Some(_) => None,
            },
            _ => Some(("?".into(), "not a JSON object".into())),
        };
        if let Some((id, why)) = why {
            bad = Some((i + 1, id, why));
            break;
        }
        n += 1;
    }
    match (&bad, json) {
        (None, true) => println!("{}", serde_json::json!({"ok": true, "events": n})),
        (None, false) => println!("{n} event(s) verified"),
        (Some((line, id, why)), true) => println!(
            "{}",
            serde_json::json!({"ok": false, "verified": n, "line": line, "event": id, "why": why})
        ),
        (Some((line, id, why)), false) => eprintln!("event {id} (line {line}): {why}"),
    }
    Ok(if bad.is_none() { 0 } else { 1 })
}
