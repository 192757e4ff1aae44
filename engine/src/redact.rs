//! Values that came from the environment (`${env:NAME}` in `spine.toml`, `SPINE_VAR_*` overrides of
//! `[vars]`) are treated as secrets: once the project is loaded, [`redact`] replaces each of them with
//! `***` in any text. The engine applies it wherever text is stored or leaves the process: step errors
//! ([`StepError`](crate::kinds::StepError)), events ([`NewEvent`](crate::store::NewEvent)), and the
//! CLI's error output and log lines.
//!
//! Values shorter than [`MIN_SECRET_CHARS`] characters are not redacted (a `SPINE_VAR_REGION=eu`
//! would otherwise star out every "eu" in every message).

use std::borrow::Cow;
use std::sync::RwLock;

/// Shorter values are not treated as secrets.
pub const MIN_SECRET_CHARS: usize = 4;

/// What replaces a secret.
pub const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// PII patterns (`[guardrails]`): each match is replaced by `[NAME]`.
static PATTERNS: RwLock<Vec<(String, regex::Regex)>> = RwLock::new(Vec::new());

/// The built-in PII patterns `[guardrails] pii` names: `email`, `phone` (international `+…`, or
/// `(555) 123-4567`-shaped) and `card` (13–19 digits, spaced or not, that pass the Luhn check).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    ),
    (
        "phone",
        r"(?:\+[0-9]{1,3}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-]?[0-9]{2,4}){1,4})|(?:\(?\b[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}\b)",
    ),
    ("card", r"\b[0-9](?:[ -]?[0-9]){12,18}\b"),
];

/// Sets the PII patterns: built-in names and `(name, regex)` pairs of the project's own; a message
/// naming the bad one otherwise. Replaces what was set before, in this process.
pub fn set_patterns(built_in: &[String], own: &[(String, String)]) -> Result<(), String> {
    let mut out = Vec::new();
    for name in built_in {
        let Some((_, re)) = BUILT_IN.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "[guardrails] pii: no built-in pattern '{name}' (there are {})",
                names.join(", ")
            ));
        };
        out.push((
            name.clone(),
            regex::Regex::new(re).map_err(|e| e.to_string())?,
        ));
    }
    for (name, re) in own {
        let r = regex::Regex::new(re)
            .map_err(|e| format!("[guardrails.patterns] {name}: not a regular expression: {e}"))?;
        out.push((name.clone(), r));
    }
    if let Ok(mut p) = PATTERNS.write() {
        *p = out;
    }
    Ok(())
}

/// Whether `digits` (spaces and dashes ignored) pass the Luhn check card numbers carry.
fn luhn(digits: &str) -> bool {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match i % 2 {
            1 if d * 2 > 9 => d * 2 - 9,
            1 => d * 2,
            _ => *d,
        })
        .sum();
    ds.len() >= 13 && sum.is_multiple_of(10)
}

/// `text` with every PII pattern's matches replaced by `[NAME]`.
fn mask_patterns(text: &str) -> Option<String> {
    let patterns = PATTERNS.read().ok()?;
    let mut out: Option<String> = None;
    for (name, re) in patterns.iter() {
        let current = out.as_deref().unwrap_or(text);
        if !re.is_match(current) {
            continue;
        }
        let mask = format!("[{name}]");
        let replaced = re.replace_all(current, |c: &regex::Captures<'_>| {
            let m = &c[0];
            if name == "card" && !luhn(m) {
                m.to_string()
            } else {
                mask.clone()
            }
        });
        out = Some(replaced.into_owned());
    }
    out.filter(|o| o != text)
}

/// Treats `value` as a secret from now on, in this process.
pub fn register(value: &str) {
    if value.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let Ok(mut secrets) = SECRETS.write() else {
        return;
    };
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    if secrets.iter().any(|s| text.contains(s.as_str())) {
        let mut o = text.to_string();
        for s in secrets.iter() {
            if o.contains(s.as_str()) {
                o = o.replace(s.as_str(), MASK);
            }
        }
        out = Cow::Owned(o);
    }
    match mask_patterns(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    }
}

/// `text` redacted, owned.
pub fn redacted(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(o) => o,
    }
}

/// Redacts every string inside a JSON value.
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(o) = redact(s) {
                *s = o;
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pii_patterns_mask_emails_phones_and_cards_but_not_dates_or_ids() {
        luhn_cases();
        let p = |t: &str| {
            let _ = set_patterns(
                &["email".into(), "phone".into(), "card".into()],
                &[("employee".into(), "EMP-[0-9]{6}".into())],
            );
            let out = mask_patterns(t).unwrap_or_else(|| t.to_string());
            let _ = set_patterns(&[], &[]);
            out
        };
        assert_eq!(p("mail ana.b+x@shop.example.com now"), "mail [email] now");
        assert_eq!(
            p("call +44 20 7946 0958 or (555) 123-4567"),
            "call [phone] or [phone]"
        );
        assert_eq!(p("card 4111 1111 1111 1111 ok"), "card [card] ok");
        assert_eq!(
            p("order 4111111111111112"),
            "order 4111111111111112",
            "not Luhn-valid"
        );
        assert_eq!(
            p("on 2026-12-07 at 10:00, run 01a2527f, 1000000 rows"),
            "on 2026-12-07 at 10:00, run 01a2527f, 1000000 rows"
        );
        assert_eq!(p("by EMP-123456"), "by [employee]");
        assert!(set_patterns(&["ssn".into()], &[])
            .unwrap_err()
            .contains("email, phone, card"));
        assert!(set_patterns(&[], &[("x".into(), "(".into())])
            .unwrap_err()
            .contains("[guardrails.patterns] x"));
    }

    fn luhn_cases() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }

    #[test]
    fn registered_values_are_masked_and_short_ones_are_not() {
        register("hunter2-sekret");
        register("hunter2-sekret-longer");
        register("eu");
        assert_eq!(
            redact("Cannot cast string 'hunter2-sekret-longer' to Int64"),
            "Cannot cast string '***' to Int64"
        );
        assert_eq!(redact("a hunter2-sekret b"), "a *** b");
        assert_eq!(redact("region eu"), "region eu");
        let mut v = serde_json::json!({"error": ["x hunter2-sekret"], "n": 1});
        redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"error": ["x ***"], "n": 1}));
    }
}
