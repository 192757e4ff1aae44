//! [`EventSink`]: what a step reports while it runs (logs, metadata, check results), appended to the
//! run's event log.
//!
//! Logs are bounded per step, so a program that prints without end cannot grow the run store or slow
//! the run to a crawl: the first [`LOG_HEAD_LINES`] lines are stored as they come, the last
//! [`LOG_TAIL_LINES`] are kept in memory and stored when the step's computation ends
//! ([`EventSink::finish`]), and the lines in between are counted, written to a spill file beside the
//! run (when the sink has one) and summarised by one event that says how many were left out and where
//! they are. A line longer than [`LOG_LINE_BYTES`] is cut, saying so. Other events (metadata, checks)
//! are always stored.

use crate::events::NewEvent;
use crate::key::RunId;
use spine_schemas::events::Event;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Log lines of a step stored as they come.
pub const LOG_HEAD_LINES: usize = 1000;
/// Log lines of a step kept for the end: the last ones, stored when its computation ends.
pub const LOG_TAIL_LINES: usize = 1000;
/// Longest log line stored, in bytes; longer ones are cut.
pub const LOG_LINE_BYTES: usize = 8 * 1024;
/// Events a step keeps in memory while the event log is out of reach (a database restart), to append
/// them with the next ones; beyond this many the oldest are dropped, and counted.
pub const UNSENT_EVENTS: usize = 10_000;
/// How long [`EventSink::finish`] keeps retrying events the event log refused.
const FLUSH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a step's events are appended: the run store's event log (the engine hands kinds one).
#[async_trait::async_trait]
pub trait EventLog: Send + Sync {
    /// Appends `events`; the error is a sentence for a warning (a step goes on without them).
    async fn append_step_events(&self, events: &[NewEvent]) -> Result<(), String>;
}

/// Records what a step reports while it runs in the event log (see the module docs).
#[derive(Clone)]
pub struct EventSink {
    store: Arc<dyn EventLog>,
    run_id: RunId,
    step_id: String,
    logs: Arc<Mutex<LogBudget>>,
    unsent: Arc<Mutex<Unsent>>,
}

/// Events the event log refused, oldest first, to be appended before the next ones.
#[derive(Default)]
struct Unsent {
    events: VecDeque<NewEvent>,
    /// Dropped beyond [`UNSENT_EVENTS`].
    lost: u64,
}

/// What a step's logs used so far.
#[derive(Default)]
struct LogBudget {
    /// Lines stored from the start.
    head: usize,
    /// The latest lines past the head, (level, message).
    tail: VecDeque<(String, String)>,
    /// Lines (and their bytes) that fell out of the tail: not stored.
    dropped: u64,
    dropped_bytes: u64,
    /// Where the lines that are not stored go, and the open file once one was.
    spill_path: Option<PathBuf>,
    spill: Option<tokio::io::BufWriter<tokio::fs::File>>,
    spill_failed: bool,
}

impl EventSink {
    /// A sink for one step, appending to `store`.
    pub fn new(store: Arc<dyn EventLog>, run_id: RunId, step: &crate::key::StepKey) -> Self {
        EventSink {
            store,
            run_id,
            step_id: step.to_string(),
            logs: Arc::default(),
            unsent: Arc::default(),
        }
    }

    /// The same sink writing the log lines it does not store to `path` (created when the first
    /// such line comes).
    pub fn with_spill(self, path: PathBuf) -> Self {
        if let Ok(mut logs) = self.logs.try_lock() {
            logs.spill_path = Some(path);
        }
        self
    }

    /// Appends `event` with `message`, logging it through `tracing` at the event's level as well.
    pub async fn emit(&self, event: Event, message: &str) {
        trace(event.level(), message);
        let ev = NewEvent::of(&self.run_id, Some(&self.step_id), message, &event);
        self.append(&[ev]).await;
    }

    /// Appends `events` after any the event log refused before; refused ones are kept (see
    /// [`UNSENT_EVENTS`]). Whether nothing is left unsent.
    async fn append(&self, events: &[NewEvent]) -> bool {
        let mut unsent = self.unsent.lock().await;
        let was_empty = unsent.events.is_empty();
        unsent.events.extend(events.iter().cloned());
        if unsent.events.is_empty() {
            return true;
        }
        if unsent.lost > 0 {
            let message = format!(
                "{} step event(s) were not stored: more than {UNSENT_EVENTS} waited while the run store was out of reach",
                unsent.lost
            );
            let event = Event::Log {
                level: "warn".into(),
            };
            let ev = NewEvent::of(&self.run_id, Some(&self.step_id), &message, &event);
            unsent.events.push_front(ev);
        }
        let batch: Vec<NewEvent> = unsent.events.iter().cloned().collect();
        match self.store.append_step_events(&batch).await {
            Ok(()) => {
                unsent.events.clear();
                unsent.lost = 0;
                true
            }
            Err(e) => {
                if unsent.lost > 0 {
                    unsent.events.pop_front();
                }
                if was_empty {
                    tracing::warn!("could not record step events (kept, and tried again with the next ones): {e}");
                }
                while unsent.events.len() > UNSENT_EVENTS {
                    unsent.events.pop_front();
                    unsent.lost += 1;
                }
                false
            }
        }
    }

    /// Appends what the event log refused before, trying for up to [`FLUSH_FOR`] with backoff.
    async fn flush(&self) {
        let deadline = tokio::time::Instant::now() + FLUSH_FOR;
        let mut pause = std::time::Duration::from_millis(100);
        while !self.append(&[]).await {
            if tokio::time::Instant::now() + pause > deadline {
                let n = self.unsent.lock().await.events.len();
                tracing::error!(
                    "{n} step event(s) could not be stored: the run store stayed out of reach"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(5));
        }
    }

    /// Appends a log line at `level` (`debug`, `info`, `warn`, `error`), within the step's budget.
    pub async fn log(&self, level: &str, message: &str) {
        let message = cut(message);
        let mut logs = self.logs.lock().await;
        if logs.head < LOG_HEAD_LINES {
            logs.head += 1;
            drop(logs);
            let event = Event::Log {
                level: level.to_string(),
            };
            return self.emit(event, &message).await;
        }
        logs.tail
            .push_back((level.to_string(), message.into_owned()));
        if logs.tail.len() <= LOG_TAIL_LINES {
            return;
        }
        let Some((_, line)) = logs.tail.pop_front() else {
            return;
        };
        logs.dropped += 1;
        logs.dropped_bytes += line.len() as u64 + 1;
        logs.spill_line(&line).await;
    }

    /// Stores the kept last lines, after one event saying how many lines were left out and where
    /// they are. Called when the step's computation ends; later lines start a new tail.
    pub async fn finish(&self) {
        let mut logs = self.logs.lock().await;
        let mut events = Vec::with_capacity(logs.tail.len() + 1);
        if logs.dropped > 0 {
            let whole = match (&logs.spill, &logs.spill_path, logs.spill_failed) {
                (Some(_), Some(path), false) => format!("; they are in {}", path.display()),
                _ => String::new(),
            };
            let message = format!(
                "… {} log lines ({} bytes) between the first {LOG_HEAD_LINES} and the last \
                 {LOG_TAIL_LINES} were not stored in the run store{whole}",
                logs.dropped, logs.dropped_bytes
            );
            tracing::warn!(target: "spine::step", "{message}");
            let event = Event::Log {
                level: "warn".into(),
            };
            events.push(NewEvent::of(
                &self.run_id,
                Some(&self.step_id),
                &message,
                &event,
            ));
        }
        if let Some(spill) = logs.spill.as_mut() {
            if let Err(e) = spill.flush().await {
                tracing::warn!("cannot write the step's log file: {e}");
            }
        }
        for (level, message) in logs.tail.drain(..) {
            trace(&level, &message);
            let event = Event::Log { level };
            events.push(NewEvent::of(
                &self.run_id,
                Some(&self.step_id),
                &message,
                &event,
            ));
        }
        logs.dropped = 0;
        logs.dropped_bytes = 0;
        drop(logs);
        self.append(&events).await;
        self.flush().await;
    }
}

impl LogBudget {
    /// Writes a line that is not stored to the spill file, opening it first; a failure is logged
    /// once and the lines are only counted from then on.
    async fn spill_line(&mut self, line: &str) {
        if self.spill_failed {
            return;
        }
        let Some(path) = self.spill_path.clone() else {
            return;
        };
        if self.spill.is_none() {
            let opened = async {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::File::create(&path).await
            };
            match opened.await {
                Ok(f) => self.spill = Some(tokio::io::BufWriter::new(f)),
                Err(e) => {
                    tracing::warn!("cannot create the step's log file {}: {e}", path.display());
                    self.spill_failed = true;
                    return;
                }
            }
        }
        if let Some(f) = self.spill.as_mut() {
            let written = async {
                f.write_all(line.as_bytes()).await?;
                f.write_all(b"\n").await
            };
            if let Err(e) = written.await {
                tracing::warn!("cannot write the step's log file {}: {e}", path.display());
                self.spill_failed = true;
            }
        }
    }
}

/// Mirrors a stored line to `tracing`.
fn trace(level: &str, message: &str) {
    match level {
        "error" => tracing::error!(target: "spine::step", "{message}"),
        "warn" => tracing::warn!(target: "spine::step", "{message}"),
        "debug" => tracing::debug!(target: "spine::step", "{message}"),
        _ => tracing::info!(target: "spine::step", "{message}"),
    }
}

/// `message`, cut at [`LOG_LINE_BYTES`] (on a character boundary) with a note of how much was cut.
fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= LOG_LINE_BYTES {
        return message.into();
    }
    let mut end = LOG_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes of this line not stored)",
        &message[..end],
        message.len() - end
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(super::LOG_LINE_BYTES);
        let c = cut(&long);
        assert!(c.len() < long.len());
        assert!(c.ends_with("more bytes of this line not stored)"), "{c}");
    }
}

#[cfg(test)]
mod unsent_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An event log that refuses the first `refuse` appends, then stores.
    #[derive(Default)]
    struct Flaky {
        refuse: AtomicUsize,
        stored: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl EventLog for Flaky {
        async fn append_step_events(&self, events: &[NewEvent]) -> Result<(), String> {
            if self
                .refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("connection refused".into());
            }
            let mut stored = self.stored.lock().unwrap();
            stored.extend(events.iter().map(|e| e.message.clone()));
            Ok(())
        }
    }

    fn sink(log: &Arc<Flaky>) -> EventSink {
        let step = crate::key::StepKey::whole(crate::key::AssetKey::parse("a").unwrap());
        EventSink::new(log.clone(), RunId("r".into()), &step)
    }

    #[tokio::test]
    async fn events_refused_while_the_store_is_away_are_stored_later_in_order() {
        let log = Arc::new(Flaky::default());
        log.refuse.store(3, Ordering::SeqCst);
        let s = sink(&log);
        for i in 0..5 {
            s.log("info", &format!("line {i}")).await;
        }
        // Refused three times: lines 0..2 waited and went with line 3.
        let stored = log.stored.lock().unwrap().clone();
        assert_eq!(stored, ["line 0", "line 1", "line 2", "line 3", "line 4"]);
        log.refuse.store(2, Ordering::SeqCst);
        s.log("info", "line 5").await;
        assert_eq!(log.stored.lock().unwrap().len(), 5, "line 5 waits");
        // The step's end retries until the log takes it.
        s.finish().await;
        assert_eq!(log.stored.lock().unwrap().last().unwrap(), "line 5");
    }

    #[tokio::test]
    async fn beyond_the_bound_the_oldest_are_dropped_and_counted() {
        let log = Arc::new(Flaky::default());
        log.refuse.store(usize::MAX, Ordering::SeqCst);
        let s = sink(&log);
        let many: Vec<NewEvent> = (0..UNSENT_EVENTS + 5)
            .map(|i| {
                let event = Event::Log {
                    level: "info".into(),
                };
                NewEvent::of(&RunId("r".into()), Some("a"), format!("e{i}"), &event)
            })
            .collect();
        assert!(!s.append(&many).await);
        log.refuse.store(0, Ordering::SeqCst);
        assert!(s.append(&[]).await);
        let stored = log.stored.lock().unwrap().clone();
        assert_eq!(stored.len(), UNSENT_EVENTS + 1);
        assert!(
            stored[0].starts_with("5 step event(s) were not stored"),
            "{}",
            stored[0]
        );
        assert_eq!(stored[1], "e5");
    }
}
