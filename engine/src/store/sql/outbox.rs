// The event log's one writer: every event is appended by `insert_events`, inside the transaction of
// the state change it tells of (a run or step starting or ending, a tick, a claim taken over), so the
// event log is a transactional outbox: an event exists exactly when its change committed, in the
// order readers tailing a run by id see it. Publishers (Kafka, Redis, NATS) read from it.

use super::*;

/// Rows per multi-row INSERT: SQLite binds at most 32766 parameters per statement.
pub(super) const EVENTS_PER_INSERT: usize = 4000;

/// Appends events in one statement per 4000 (each statement is a round trip to the database):
/// the one writer of the event log, called inside the transaction of each state change it tells of.
///
/// Where the backend needs it (`EVENT_ORDER_LOCK`, Postgres), each run's events get their ids in
/// commit order: the transaction takes the run's lock before allocating ids, so a reader tailing
/// the run by id never passes over an event committed later with a lower id. The events of one run
/// (the usual case) take it in the insert itself, one round trip less; those of several runs take
/// each run's lock first, in run id order, so two transactions lock them in the same order.
pub(super) async fn insert_events(
    tx: &mut DbConnection,
    ts: &str,
    events: &[NewEvent],
) -> StoreResult<()> {
    let runs: std::collections::BTreeSet<&str> = events.iter().map(|e| e.run_id.as_str()).collect();
    let mut lock_in_insert = None;
    if let Some((call, close)) = EVENT_ORDER_LOCK {
        match runs.first() {
            Some(run) if one_run(events) => {
                lock_in_insert = Some((*run, call, close));
            }
            _ => {
                for r in &runs {
                    xact_lock(tx, r).await?;
                }
            }
        }
    }
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO events (run_id, step_id, ts, kind, level, message, data) ",
        );
        if lock_in_insert.is_some() {
            q.push("SELECT v.* FROM (");
        }
        push_event_rows(&mut q, ts, chunk);
        if let Some((run, call, close)) = lock_in_insert {
            // The lock is a joined row every value row waits for, so it is taken before the
            // insert allocates the first id.
            q.push(") AS v CROSS JOIN (SELECT ")
                .push(call)
                .push_bind(run)
                .push(close)
                .push(") AS run_lock");
        }
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The `VALUES` rows of `events`, stamped `ts`, in the order of the events table's columns
/// `(run_id, step_id, ts, kind, level, message, data)`.
pub(super) fn push_event_rows(q: &mut sqlx::QueryBuilder<Db>, ts: &str, events: &[NewEvent]) {
    q.push_values(events, |mut b, e| {
        b.push_bind(e.run_id.as_str())
            .push_bind(e.step_id.as_deref())
            .push_bind(ts)
            .push_bind(e.kind.as_str())
            .push_bind(e.level.as_str())
            .push_bind(e.message.as_str())
            .push_bind(e.data.as_ref().map(|d| d.to_string()));
    });
}

/// Takes the transaction-level lock named `key` where the backend has such locks (Postgres,
/// `EVENT_ORDER_LOCK`); SQLite's writers already go one at a time.
pub(super) async fn xact_lock(tx: &mut DbConnection, key: &str) -> StoreResult<()> {
    if let Some((call, close)) = EVENT_ORDER_LOCK {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT ");
        q.push(call).push_bind(key).push(close);
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}
