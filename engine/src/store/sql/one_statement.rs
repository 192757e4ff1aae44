// A step's start and end as one statement each, where the backend can chain writes in one statement
// (`ONE_STATEMENT`: Postgres, with data-modifying common table expressions). Every statement sent to a
// database server is a round trip, and the per-step path made fifteen of them (measured with
// pgbench on this machine: the same work as two single statements ran 1.7× as many steps per
// second). Each part below is fed by the `RETURNING` rows of the part before it, so it writes only
// when that part did, and the whole is atomic as one statement is. SQLite, in process, runs the
// same protocol as separate statements (`txn.rs`); the conformance suite runs both.

use super::*;

/// What a one-statement start found.
pub(super) struct StartRow {
    /// The step exists.
    pub found: bool,
    /// The attempt started (`None`: the claim was not granted): its sequence number and the one
    /// before it.
    pub started: Option<StartedAttempt>,
}

/// A claim to take with the start: the claim, the time to judge its holder's lease by, and an owner
/// known dead whose claim may be taken over.
pub(super) type ClaimPart<'a> = (&'a StepClaim, i64, Option<&'a str>);

/// Starts attempt `attempt` of the step as one statement (see the module comment): when the step
/// exists (and, with `only_if_ready`, is still `pending` or `running` the attempt before, locked as
/// `step_state` locks it: `found` is false otherwise), takes `claim` (if given, as `upsert_claim` does); when granted, allocates the sequence
/// number (as `start_in` does), marks the step running, and appends `event` with the number under
/// the run's event-order lock.
pub(super) async fn start_statement<'c, E>(
    ex: E,
    (ts, floor_ms): (&str, i64),
    claim: Option<ClaimPart<'_>>,
    (run_id, step_id): (&RunId, &str),
    attempt: i64,
    only_if_ready: bool,
    event: &NewEvent,
) -> StoreResult<StartRow>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let (lock_call, lock_close) = EVENT_ORDER_LOCK.unwrap_or(("", ""));
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "WITH st0 AS (SELECT asset_key, COALESCE(partition_key, '') AS pk FROM steps WHERE run_id = ",
    );
    q.push_bind(run_id.as_str())
        .push(" AND step_id = ")
        .push_bind(step_id);
    if only_if_ready {
        // Locked, and checked again on the row's latest version if another start or end
        // committed meanwhile: two workers never both start it.
        q.push(" AND (status = 'pending' OR (status = 'running' AND attempt = ")
            .push_bind(attempt - 1)
            .push(")) FOR UPDATE");
    }
    q.push("), ");
    match claim {
        Some((c, now_ms, takeover_from)) => {
            q.push(
                "claim AS (INSERT INTO step_claims (asset_key, partition_key, run_id, owner, lease_until, claimed_at) SELECT ",
            )
            .push_bind(c.step.asset.as_str())
            .push(", ")
            .push_bind(c.step.partition_str())
            .push(", ")
            .push_bind(c.run_id.as_str())
            .push(", ")
            .push_bind(c.owner.as_str())
            .push(", ")
            .push_bind(c.lease_until_ms)
            .push(", ")
            .push_bind(now_ms)
            .push(
                " FROM st0 ON CONFLICT (asset_key, partition_key) DO UPDATE SET
                   run_id = excluded.run_id, owner = excluded.owner,
                   lease_until = excluded.lease_until, claimed_at = excluded.claimed_at,
                   limits = excluded.limits
                 WHERE step_claims.lease_until < ",
            )
            .push_bind(now_ms)
            .push(" OR step_claims.owner = excluded.owner OR step_claims.owner = ")
            .push_bind(takeover_from)
            .push(" RETURNING owner), ");
        }
        None => {
            q.push("claim AS (SELECT 1 FROM st0), ");
        }
    }
    q.push(
        "seq AS (INSERT INTO asset_sequences (asset_key, partition_key, last_seq)
           SELECT asset_key, pk, ",
    )
    .push_bind(floor_ms.max(1))
    .push(
        " FROM st0 WHERE EXISTS (SELECT 1 FROM claim)
         ON CONFLICT (asset_key, partition_key)
           DO UPDATE SET prev_seq = asset_sequences.last_seq,
             last_seq = CASE WHEN excluded.last_seq > asset_sequences.last_seq
               THEN excluded.last_seq ELSE asset_sequences.last_seq + 1 END
         RETURNING last_seq, prev_seq), ",
    )
    .push("upd AS (UPDATE steps SET status = 'running', attempt = ")
    .push_bind(attempt)
    .push(", error = NULL, started_at = COALESCE(started_at, ")
    .push_bind(ts)
    .push("), seq = (SELECT last_seq FROM seq) WHERE run_id = ")
    .push_bind(run_id.as_str())
    .push(" AND step_id = ")
    .push_bind(step_id)
    .push(" AND EXISTS (SELECT 1 FROM seq) RETURNING 1), ")
    // The run's event-order lock is taken (a row every event row waits for) before the event's id
    // is allocated, as `insert_events` does.
    .push("run_lock AS (SELECT ")
    .push(lock_call)
    .push_bind(event.run_id.as_str())
    .push(lock_close)
    .push(" FROM seq), ")
    .push("ev AS (INSERT INTO events (run_id, step_id, ts, kind, level, message, data) SELECT ")
    .push_bind(event.run_id.as_str())
    .push(", ")
    .push_bind(event.step_id.as_deref())
    .push(", ")
    .push_bind(ts)
    .push(", ")
    .push_bind(event.kind.as_str())
    .push(", ")
    .push_bind(event.level.as_str())
    .push(", ")
    .push_bind(event.message.as_str());
    // The payload gains the sequence number (`NewEvent::with_field`), when it is an object.
    match &event.data {
        Some(serde_json::Value::Object(_)) => {
            let data = event.data.as_ref().map(|d| d.to_string());
            q.push(", (CAST(")
                .push_bind(data)
                .push(" AS jsonb) || jsonb_build_object('seq', seq.last_seq))::text");
        }
        other => {
            q.push(", ")
                .push_bind(other.as_ref().map(|d| d.to_string()));
        }
    }
    q.push(
        " FROM seq CROSS JOIN run_lock RETURNING 1)
         SELECT (SELECT COUNT(*) FROM st0) AS found,
           (SELECT last_seq FROM seq) AS seq, (SELECT prev_seq FROM seq) AS previous",
    );
    let row = q.build().fetch_one(ex).await?;
    let found: i64 = row.try_get("found")?;
    let seq: Option<i64> = row.try_get("seq")?;
    let previous: Option<i64> = row.try_get("previous")?;
    Ok(StartRow {
        found: found > 0,
        started: seq.map(|seq| StartedAttempt {
            seq,
            previous: previous.unwrap_or(0),
        }),
    })
}

/// How a claimed start in one statement ended.
pub(super) enum ClaimedStart {
    /// Started.
    Started(StartedAttempt),
    /// Another owner holds the claim.
    Held(StepClaim),
    /// No such step (or, `only_if_ready`, not ready to start the attempt).
    Absent,
}

impl Store {
    /// Takes `claim` and starts attempt `attempt` in one statement outside a transaction (one round
    /// trip, one commit): [`start_statement`] with the claim, asking for the holder when it was not
    /// granted, and trying again when the holder let go in between.
    pub(super) async fn start_claimed_in_one(
        &self,
        (claim, now_ms, takeover_from): ClaimPart<'_>,
        attempt: i64,
        only_if_ready: bool,
        event: &NewEvent,
    ) -> StoreResult<ClaimedStart> {
        let step_id = claim.step.to_string();
        loop {
            let row = start_statement(
                &self.pool,
                (&self.clock.stamp(), self.clock.now_ms()),
                Some((claim, now_ms, takeover_from)),
                (&claim.run_id, &step_id),
                attempt,
                only_if_ready,
                event,
            )
            .await?;
            if !row.found {
                return Ok(ClaimedStart::Absent);
            }
            if let Some(started) = row.started {
                return Ok(ClaimedStart::Started(started));
            }
            if let Some(holder) = claim_holder(&self.pool, &claim.step).await? {
                return Ok(ClaimedStart::Held(holder));
            }
        }
    }

    /// Ends a step that records nothing as one statement outside a transaction (one round trip),
    /// where the backend can (`ONE_STATEMENT`) and the outcome allows (no materialization, events of
    /// one run): `Some(held)` — with `held_by`, whether that owner held the claim and the end was
    /// recorded. `None`: not done here; the caller ends the step in a transaction.
    pub(super) async fn finish_in_one(
        &self,
        (run_id, step): (&RunId, &StepKey),
        held_by: Option<&str>,
        outcome: &StepOutcome,
    ) -> StoreResult<Option<bool>> {
        if !ONE_STATEMENT || outcome.materialization.is_some() || !one_run(&outcome.events) {
            return Ok(None);
        }
        let ts = self.clock.stamp();
        let held = finish_statement(
            &self.pool,
            &ts,
            (run_id, &step.to_string()),
            held_by.map(|owner| (step, owner)),
            outcome,
            &outcome.events,
        )
        .await?;
        Ok(Some(held))
    }
}

/// Whether `events` can go into one statement's insert: all of one run (one event-order lock),
/// and few enough for one insert.
pub(super) fn one_run(events: &[NewEvent]) -> bool {
    events.len() <= EVENTS_PER_INSERT
        && events
            .first()
            .is_none_or(|e| events.iter().all(|o| o.run_id == e.run_id))
}

/// The end of a step as one statement (see the module comment), for `events` of one run
/// ([`one_run`]): releases the run's claim on the step key if the step was running (as `finish_in`
/// does), records the step's end, and appends `events` under the run's event-order lock. With
/// `held_by` (a step key and an owner), only while that owner holds the step key's claim (locked,
/// and checked again on its latest version if a re-claim committed meanwhile); whether it did.
pub(super) async fn finish_statement<'c, E>(
    ex: E,
    ts: &str,
    (run_id, step_id): (&RunId, &str),
    held_by: Option<(&StepKey, &str)>,
    outcome: &StepOutcome,
    events: &[NewEvent],
) -> StoreResult<bool>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let mut q = sqlx::QueryBuilder::<Db>::new("WITH held AS (SELECT 1 AS one");
    if let Some((step, owner)) = held_by {
        q.push(" FROM step_claims WHERE asset_key = ")
            .push_bind(step.asset.as_str())
            .push(" AND partition_key = ")
            .push_bind(step.partition_str())
            .push(" AND owner = ")
            .push_bind(owner)
            .push(" FOR UPDATE");
    }
    q.push("), ");
    q.push("released AS (DELETE FROM step_claims WHERE run_id = ")
        .push_bind(run_id.as_str())
        .push(
            " AND (asset_key, partition_key) IN
               (SELECT asset_key, COALESCE(partition_key, '') FROM steps WHERE run_id = ",
        )
        .push_bind(run_id.as_str())
        .push(" AND step_id = ")
        .push_bind(step_id)
        .push(" AND status = 'running') AND EXISTS (SELECT 1 FROM held) RETURNING 1), ")
        .push("upd AS (UPDATE steps SET status = ")
        .push_bind(outcome.status.as_str())
        .push(", finished_at = ")
        .push_bind(ts)
        .push(", error = COALESCE(")
        .push_bind(outcome.error.as_deref().map(crate::redact::redact))
        .push(", error), reason = ")
        .push_bind(outcome.reason.as_deref())
        .push(", failure_class = ")
        .push_bind(outcome.failure_class.as_deref())
        .push(" WHERE run_id = ")
        .push_bind(run_id.as_str())
        .push(" AND step_id = ")
        .push_bind(step_id)
        .push(" AND EXISTS (SELECT 1 FROM held) RETURNING 1)");
    if let Some(first) = events.first() {
        let locked = EVENT_ORDER_LOCK.is_some();
        if let Some((lock_call, lock_close)) = EVENT_ORDER_LOCK {
            q.push(", run_lock AS (SELECT ")
                .push(lock_call)
                .push_bind(first.run_id.as_str())
                .push(lock_close)
                .push(")");
        }
        q.push(
            ", ev AS (INSERT INTO events (run_id, step_id, ts, kind, level, message, data) \
             SELECT v.* FROM (",
        );
        push_event_rows(&mut q, ts, events);
        q.push(if locked {
            ") AS v CROSS JOIN run_lock WHERE EXISTS (SELECT 1 FROM held) RETURNING 1)"
        } else {
            ") AS v WHERE EXISTS (SELECT 1 FROM held) RETURNING 1)"
        });
    }
    q.push(" SELECT (SELECT COUNT(*) FROM held) AS held");
    let row = q.build().fetch_one(ex).await?;
    let held: i64 = row.try_get("held")?;
    Ok(held > 0)
}
