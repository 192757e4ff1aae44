//! Time, injected. Everything in the engine that waits or compares deadlines (retry back-off, step
//! leases and their renewal, waiting for another run's step) asks a [`Clock`], so tests drive time with a
//! [`ManualClock`] instead of sleeping. [`SystemClock`] is the real one. The run store stamps runs,
//! steps, events and materializations with the same clock.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A source of the current time and of sleeps measured against it.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
    /// The current time in milliseconds since the Unix epoch (how leases are stored).
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
    /// The current time as the run store writes timestamps: RFC 3339 in UTC, milliseconds.
    fn stamp(&self) -> String {
        self.now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// The system's wall clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told to: [`advance`](ManualClock::advance) wakes every sleep whose
/// deadline has passed.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        self.now.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let deadline =
            self.now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            while *rx.borrow_and_update() < deadline {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleeps_end_exactly_when_time_passes_their_deadline() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_000, 0).unwrap());
        let short = tokio::spawn(clock.sleep(Duration::from_secs(10)));
        let long = tokio::spawn(clock.sleep(Duration::from_secs(60)));
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(9));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!short.is_finished(), "9 s of 10 passed");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), short)
            .await
            .expect("the 10 s sleep ends at 10 s")
            .unwrap();
        assert!(!long.is_finished());
        clock.advance(Duration::from_secs(50));
        tokio::time::timeout(Duration::from_secs(5), long)
            .await
            .expect("the 60 s sleep ends at 60 s")
            .unwrap();
        assert_eq!(clock.now_ms(), 1_060_000);
    }
}
