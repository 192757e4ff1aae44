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
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
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
