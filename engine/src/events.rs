//! Events of the append-only log: [`NewEvent`] (typed, redacted when made) and [`EventRecord`] (as
//! stored, with its id and time).

use crate::key::RunId;
use serde::{Deserialize, Serialize};

/// An event to append.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEvent {
    /// Run.
    pub run_id: String,
    /// Step, when the event belongs to one.
    pub step_id: Option<String>,
    /// Kind (see `spine_schemas::events::EventKind`).
    pub kind: String,
    /// `debug`, `info`, `warn`, `error`.
    pub level: String,
    /// Human message.
    pub message: String,
    /// Structured payload.
    pub data: Option<serde_json::Value>,
}

impl NewEvent {
    /// The one way events are made: `event`'s kind, level and typed payload, with a human message.
    pub fn of(
        run_id: &RunId,
        step_id: Option<&str>,
        message: impl Into<String>,
        event: &spine_schemas::events::Event,
    ) -> Self {
        let mut data = event.payload();
        crate::redact::redact_json(&mut data);
        NewEvent {
            run_id: run_id.0.clone(),
            step_id: step_id.map(str::to_string),
            kind: event.kind().as_str().to_string(),
            level: event.level().to_string(),
            message: crate::redact::redacted(message.into()),
            data: Some(data),
        }
    }

    /// An event with a kind and no payload. The engine itself writes only typed events ([`of`](Self::of));
    /// this is for tools and tests that exercise the store directly.
    pub fn new(
        run_id: &RunId,
        step_id: Option<&str>,
        kind: spine_schemas::events::EventKind,
        level: &str,
        message: impl Into<String>,
    ) -> Self {
        NewEvent {
            run_id: run_id.0.clone(),
            step_id: step_id.map(str::to_string),
            kind: kind.as_str().to_string(),
            level: level.to_string(),
            message: crate::redact::redacted(message.into()),
            data: None,
        }
    }

    /// The typed event back, when its payload is a current one.
    pub fn event(&self) -> Option<spine_schemas::events::Event> {
        spine_schemas::events::Event::from_stored(&self.kind, self.data.as_ref()?).ok()
    }

    /// Adds a field the store knows only when it writes the event (a step's allocated `seq`).
    pub(crate) fn with_field(mut self, key: &str, value: serde_json::Value) -> Self {
        if let Some(serde_json::Value::Object(o)) = &mut self.data {
            o.insert(key.to_string(), value);
        }
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the log.
    pub id: i64,
    /// Timestamp.
    pub ts: String,
    /// The event.
    #[serde(flatten)]
    pub event: NewEvent,
}
