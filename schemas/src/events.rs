//! Domain events: every state change of a run is appended to the event log as one of these.

use serde::{Deserialize, Serialize};

/// What happened. Stored as its snake_case name in the event log's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A step attempt started.
    StepStarted,
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
            EventKind::StepStarted => "step_started",
            EventKind::StepUpToDate => "step_up_to_date",
            EventKind::StepAttemptFailed => "step_attempt_failed",
            EventKind::StepFailed => "step_failed",
            EventKind::StepSkipped => "step_skipped",
            EventKind::StepCancelled => "step_cancelled",
            EventKind::Materialization => "materialization",
            EventKind::Log => "log",
            EventKind::Metadata => "metadata",
            EventKind::CheckResult => "check_result",
        }
    }
}

/// A message a `command` asset prints on stdout, one JSON object per line (the JSON-lines protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

fn default_level() -> String {
    "info".to_string()
}

/// How much a failed check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
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
