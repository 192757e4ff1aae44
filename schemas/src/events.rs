//! Domain events: every state change of a run is appended to the event log as one [`Event`]: its kind
//! goes to the log's `kind` column, its payload (the variant's fields plus `"v"`, the payload version
//! [`EVENT_VERSION`]) to `data`. The engine writes events through one constructor
//! (`spine_engine::store::NewEvent::of`), so an outbox, redaction or a bus can be added in one place.

use serde::{Deserialize, Serialize};

/// Version of the event payloads; stored as `"v"` in every event's data. Bump it when a payload
/// changes incompatibly.
pub const EVENT_VERSION: u32 = 1;

/// What happened, with its typed payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A run was recorded with its plan.
    RunQueued {
        /// The selection, `None` for everything.
        selection: Option<String>,
        /// Whether fresh steps are recomputed.
        force: bool,
        /// Planned steps.
        steps: usize,
    },
    /// An executor took the run.
    RunStarted {
        /// Its process id.
        pid: i64,
        /// Its host.
        host: String,
    },
    /// Every step succeeded or was up to date.
    RunSucceeded {},
    /// At least one step failed, or the run's process died.
    RunFailed {
        /// Why.
        error: Option<String>,
    },
    /// The run was cancelled.
    RunCancelled {},
    /// The run stopped with steps parked until a signal; `execute` resumes it.
    RunWaiting {
        /// Steps waiting.
        waiting: usize,
    },
    /// A step attempt started (the store adds the allocated `seq`).
    StepStarted {
        /// From 1.
        attempt: u32,
        /// `retries + 1`.
        max_attempts: u32,
    },
    /// Another run holds the step's claim; this one waits for it.
    StepWaiting {
        /// The run holding it.
        holder_run: String,
    },
    /// A step's kind parked it until an external signal (an approval, a workflow); its slot is free.
    StepParked {
        /// What it waits for.
        reason: String,
    },
    /// A parked step was signalled; the next `execute` runs it again with the payload.
    StepSignalled {
        /// What the signal carries (e.g. `{"approved": true, "by": "ana"}`).
        payload: serde_json::Value,
    },
    /// A step was fresh and not recomputed.
    StepUpToDate {
        /// Why (e.g. "fresh (materialized in run …)").
        reason: String,
    },
    /// An attempt failed and will be retried.
    StepAttemptFailed {
        /// The failed attempt.
        attempt: u32,
        /// What went wrong.
        error: String,
        /// Back-off before the next attempt.
        retry_in_ms: u64,
    },
    /// A step failed after its last attempt.
    StepFailed {
        /// What went wrong.
        error: String,
        /// `retryable` or `permanent` (absent in events written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
    },
    /// A step did not run (an upstream failed, or `--no-wait`).
    StepSkipped {
        /// Why.
        reason: String,
    },
    /// A step was cancelled.
    StepCancelled {
        /// Why.
        reason: String,
    },
    /// A materialization was committed and recorded.
    Materialization {
        /// Delta version written.
        delta_version: i64,
        /// Rows written.
        rows: i64,
        /// Content hash.
        data_version: String,
        /// Code version computed with.
        code_version: String,
        /// The Delta `txn` sequence number.
        seq: i64,
        /// Recorded by crash recovery from the commit itself.
        recovered: bool,
    },
    /// A log line from a step.
    Log {
        /// `debug`, `info`, `warn`, `error`.
        level: String,
    },
    /// Metadata reported by a step.
    Metadata {
        /// The reported object.
        data: serde_json::Map<String, serde_json::Value>,
    },
    /// A check result reported by a step.
    CheckResult {
        /// Check name.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// How much a failure matters.
        severity: CheckSeverity,
    },
    /// A step went over one of its budgets (an agent's tokens, cost or wall time) and was stopped.
    BudgetExceeded {
        /// Which budget: `tokens`, `cost`, `wall_time` (per step), `run_tokens`, `run_cost`.
        budget: String,
        /// What was used when it stopped.
        used: f64,
        /// What the budget allows.
        limit: f64,
        /// Whether the run stops too (`on_exceed: stop_run`).
        stops_run: bool,
    },
    /// A kind this version does not know (written by a newer Spine): read back, not understood. Never
    /// written.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl Event {
    /// The kind, as stored in the `kind` column.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::RunQueued { .. } => EventKind::RunQueued,
            Event::RunStarted { .. } => EventKind::RunStarted,
            Event::RunSucceeded {} => EventKind::RunSucceeded,
            Event::RunFailed { .. } => EventKind::RunFailed,
            Event::RunCancelled {} => EventKind::RunCancelled,
            Event::RunWaiting { .. } => EventKind::RunWaiting,
            Event::StepParked { .. } => EventKind::StepParked,
            Event::StepSignalled { .. } => EventKind::StepSignalled,
            Event::StepStarted { .. } => EventKind::StepStarted,
            Event::StepWaiting { .. } => EventKind::StepWaiting,
            Event::StepUpToDate { .. } => EventKind::StepUpToDate,
            Event::StepAttemptFailed { .. } => EventKind::StepAttemptFailed,
            Event::StepFailed { .. } => EventKind::StepFailed,
            Event::StepSkipped { .. } => EventKind::StepSkipped,
            Event::StepCancelled { .. } => EventKind::StepCancelled,
            Event::Materialization { .. } => EventKind::Materialization,
            Event::Log { .. } => EventKind::Log,
            Event::Metadata { .. } => EventKind::Metadata,
            Event::CheckResult { .. } => EventKind::CheckResult,
            Event::BudgetExceeded { .. } => EventKind::BudgetExceeded,
            Event::Unknown => EventKind::Unknown,
        }
    }

    /// The log level the event is recorded at.
    pub fn level(&self) -> &str {
        match self {
            Event::Log { level } => level,
            Event::StepFailed { .. } => "error",
            Event::CheckResult {
                passed: false,
                severity: CheckSeverity::Error,
                ..
            } => "error",
            Event::BudgetExceeded { .. } => "error",
            Event::RunFailed { .. }
            | Event::RunCancelled {}
            | Event::StepAttemptFailed { .. }
            | Event::StepSkipped { .. }
            | Event::StepCancelled { .. }
            | Event::CheckResult { passed: false, .. } => "warn",
            _ => "info",
        }
    }

    /// The payload as stored: the variant's fields and `"v"`.
    pub fn payload(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("kind");
            o.insert("v".into(), EVENT_VERSION.into());
        }
        v
    }

    /// Reads a stored event back from its kind and payload.
    pub fn from_stored(kind: &str, payload: &serde_json::Value) -> Result<Self, serde_json::Error> {
        let mut v = payload.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("v");
            o.insert("kind".into(), kind.into());
        }
        serde_json::from_value(v)
    }
}

/// What happened. Stored as its snake_case name in the event log's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run was created with its plan.
    RunQueued,
    /// A run started executing.
    RunStarted,
    /// A run ended with every step succeeded or up to date.
    RunSucceeded,
    /// A run ended with at least one failed step.
    RunFailed,
    /// A run was cancelled (Ctrl-C or a request).
    RunCancelled,
    /// A run stopped with parked steps.
    RunWaiting,
    /// A step was parked until a signal.
    StepParked,
    /// A parked step was signalled.
    StepSignalled,
    /// A step attempt started.
    StepStarted,
    /// A step waits for another run's claim on its step key.
    StepWaiting,
    /// A step was fresh and not recomputed.
    StepUpToDate,
    /// A step attempt failed (it may be retried).
    StepAttemptFailed,
    /// A step failed after its last attempt.
    StepFailed,
    /// A step did not run because an upstream step failed.
    StepSkipped,
    /// A step was cancelled.
    StepCancelled,
    /// A materialization was committed.
    Materialization,
    /// A log line from a step.
    Log,
    /// Metadata reported by a step.
    Metadata,
    /// A check result reported by a step.
    CheckResult,
    /// A step went over a budget.
    BudgetExceeded,
    /// A kind a newer Spine wrote ([`Event::Unknown`]).
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunQueued => "run_queued",
            EventKind::RunStarted => "run_started",
            EventKind::RunSucceeded => "run_succeeded",
            EventKind::RunFailed => "run_failed",
            EventKind::RunCancelled => "run_cancelled",
            EventKind::RunWaiting => "run_waiting",
            EventKind::StepParked => "step_parked",
            EventKind::StepSignalled => "step_signalled",
            EventKind::StepStarted => "step_started",
            EventKind::StepWaiting => "step_waiting",
            EventKind::StepUpToDate => "step_up_to_date",
            EventKind::StepAttemptFailed => "step_attempt_failed",
            EventKind::StepFailed => "step_failed",
            EventKind::StepSkipped => "step_skipped",
            EventKind::StepCancelled => "step_cancelled",
            EventKind::Materialization => "materialization",
            EventKind::Log => "log",
            EventKind::Metadata => "metadata",
            EventKind::CheckResult => "check_result",
            EventKind::BudgetExceeded => "budget_exceeded",
            EventKind::Unknown => "unknown",
        }
    }
}

/// A message a `command` asset prints on stdout, one JSON object per line (the JSON-lines protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandMessage {
    /// `{"type":"log","level":"info","message":"..."}`
    Log {
        /// `debug`, `info`, `warn` or `error`.
        #[serde(default = "default_level")]
        level: String,
        /// The text.
        message: String,
    },
    /// `{"type":"metadata","data":{"k":"v"}}`
    Metadata {
        /// Arbitrary JSON object merged into the materialization's metadata.
        data: serde_json::Map<String, serde_json::Value>,
    },
    /// `{"type":"check","name":"no_nulls","passed":true,"severity":"error","message":"..."}`
    Check {
        /// Check name.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// `error` (the default: a failure fails the step before anything is committed) or `warn`;
        /// anything else is a protocol error.
        #[serde(default)]
        severity: CheckSeverity,
        /// Optional explanation.
        #[serde(default)]
        message: Option<String>,
    },
    /// `{"type":"wait","reason":"needs approval"}`: park the step until it is signalled (`assets
    /// signal`); its output files are ignored and nothing is committed. Resumed, the program runs
    /// again with the payload in `SPINE_SIGNAL`.
    Wait {
        /// Why it waits (shown in `assets run`).
        reason: String,
    },
    /// `{"type":"retry_after","seconds":30}`: if the program then fails (retryably), the next attempt
    /// starts no sooner than this — what a rate-limited endpoint asked for (its `Retry-After`),
    /// instead of the backoff's guess when that is shorter.
    RetryAfter {
        /// Seconds to wait, from 0 to 86,400.
        seconds: f64,
    },
}

fn default_level() -> String {
    "info".to_string()
}

/// How much a failed check matters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CheckSeverity {
    /// A failure fails the step; nothing is committed.
    #[default]
    Error,
    /// A failure is recorded only.
    Warn,
}

impl CheckSeverity {
    /// `error` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckSeverity::Error => "error",
            CheckSeverity::Warn => "warn",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_kind_and_payload() {
        let events = [
            Event::RunQueued {
                selection: Some("raw/*".into()),
                force: false,
                steps: 3,
            },
            Event::RunSucceeded {},
            Event::StepStarted {
                attempt: 1,
                max_attempts: 3,
            },
            Event::Materialization {
                delta_version: 4,
                rows: 10,
                data_version: "d".into(),
                code_version: "c".into(),
                seq: 7,
                recovered: false,
            },
            Event::CheckResult {
                name: "n".into(),
                passed: false,
                severity: CheckSeverity::Warn,
            },
        ];
        for e in events {
            let payload = e.payload();
            assert_eq!(payload["v"], EVENT_VERSION);
            assert!(payload.get("kind").is_none());
            let back = Event::from_stored(e.kind().as_str(), &payload).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(
            Event::StepFailed {
                error: "x".into(),
                class: None
            }
            .level(),
            "error"
        );
        let warn = Event::CheckResult {
            name: "n".into(),
            passed: false,
            severity: CheckSeverity::Warn,
        };
        assert_eq!(warn.level(), "warn");
    }

    #[test]
    fn check_messages_parse_strictly() {
        let ok = |s: &str| serde_json::from_str::<CommandMessage>(s);
        assert!(matches!(
            ok(r#"{"type":"check","name":"n","passed":false}"#).unwrap(),
            CommandMessage::Check {
                severity: CheckSeverity::Error,
                ..
            }
        ));
        assert!(matches!(
            ok(r#"{"type":"check","name":"n","passed":false,"severity":"warn"}"#).unwrap(),
            CommandMessage::Check {
                severity: CheckSeverity::Warn,
                ..
            }
        ));
        for bad in [
            r#"{"type":"check","name":"n","passed":false,"severity":"ERROR"}"#,
            r#"{"type":"check","name":"n","passed":false,"severity":"fatal"}"#,
            r#"{"type":"check","name":"n","passed":0}"#,
            r#"{"type":"check","name":"n"}"#,
            r#"{"type":"chek","name":"n","passed":true}"#,
        ] {
            assert!(ok(bad).is_err(), "{bad} must be rejected");
        }
    }
}
