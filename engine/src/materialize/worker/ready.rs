//! What a worker can do next in one run, decided from the run's steps as the store has them (not
//! from any process's memory): which pending steps are ready (every upstream in the plan succeeded
//! or was up to date), which must be skipped (an upstream failed, was skipped or cancelled), which
//! are running (candidates for a re-claim when their owner's lease ran out), and whether the run has
//! come to an end or to a stop behind parked steps.

use super::super::executor::run_outcome;
use crate::key::StepKey;
use crate::materialize::StepReport;
use crate::store::{RunStatus, StepRecord, StepStatus};
use spine_schemas::events::Event;
use std::collections::HashMap;

/// How the run stands when nothing more can start in it.
#[derive(Debug, Clone)]
pub(super) struct RunEnd {
    pub status: RunStatus,
    pub event: Event,
    pub message: &'static str,
    pub error: Option<String>,
}

/// The next moves in one run.
#[derive(Debug, Default)]
pub(super) struct Next {
    /// Pending steps whose upstreams all succeeded, in plan order.
    pub ready: Vec<StepKey>,
    /// Pending steps to skip, with the upstream that did not succeed.
    pub skip: Vec<(StepKey, StepKey)>,
    /// Running steps (someone's attempt, maybe a dead one's).
    pub running: Vec<StepRecord>,
    /// Set when no step is ready, running or to skip: how the run ends (or that it waits).
    pub end: Option<RunEnd>,
}

fn ok(s: StepStatus) -> bool {
    matches!(s, StepStatus::Succeeded | StepStatus::UpToDate)
}

/// The next moves in a run whose steps are `steps` and whose plan's step graph is `upstream`;
/// `cancelled` when a cancel was requested.
pub(super) fn next(
    steps: &[StepRecord],
    upstream: &HashMap<StepKey, Vec<StepKey>>,
    cancelled: bool,
) -> Next {
    let status: HashMap<StepKey, StepStatus> =
        steps.iter().map(|s| (s.step_key(), s.status)).collect();
    let mut next = Next::default();
    let mut pending = 0;
    for s in steps {
        let key = s.step_key();
        match s.status {
            StepStatus::Running => next.running.push(s.clone()),
            StepStatus::Pending => {
                pending += 1;
                let ups = upstream.get(&key).map(Vec::as_slice).unwrap_or_default();
                let mut waits = false;
                let mut blocked = None;
                for u in ups {
                    match status.get(u).copied() {
                        Some(s) if ok(s) => {}
                        Some(StepStatus::Pending | StepStatus::Running | StepStatus::Waiting) => {
                            waits = true
                        }
                        // Failed, skipped, cancelled — or not in the run at all.
                        _ => {
                            blocked.get_or_insert_with(|| u.clone());
                        }
                    }
                }
                match blocked {
                    Some(up) => next.skip.push((key, up)),
                    None if !waits => next.ready.push(key),
                    None => {}
                }
            }
            _ => {}
        }
    }
    if next.ready.is_empty() && next.skip.is_empty() && next.running.is_empty() {
        let reports: HashMap<StepKey, StepReport> = steps
            .iter()
            .filter(|s| s.status != StepStatus::Pending)
            .map(|s| {
                let mut r = StepReport::new(&s.step_key());
                r.status = s.status;
                (s.step_key(), r)
            })
            .collect();
        // Pending steps left wait behind parked ones: the run waits for their signals.
        let (status, event, message, error) = if pending > 0 && !cancelled {
            let waiting = reports
                .values()
                .filter(|r| r.status == StepStatus::Waiting)
                .count();
            (
                RunStatus::Waiting,
                Event::RunWaiting { waiting },
                "run waiting for signals",
                None,
            )
        } else {
            run_outcome(&reports, cancelled)
        };
        next.end = Some(RunEnd {
            status,
            event,
            message,
            error,
        });
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{AssetKey, RunId};

    fn key(a: &str) -> StepKey {
        StepKey::whole(AssetKey::parse(a).unwrap())
    }

    fn steps(states: &[(&str, StepStatus)]) -> Vec<StepRecord> {
        let run = RunId("r".into());
        states
            .iter()
            .enumerate()
            .map(|(i, (a, s))| StepRecord {
                status: *s,
                ..StepRecord::planned(&run, i as i64, &key(a))
            })
            .collect()
    }

    /// a → b → c, a → d
    fn graph() -> HashMap<StepKey, Vec<StepKey>> {
        HashMap::from([
            (key("a"), vec![]),
            (key("b"), vec![key("a")]),
            (key("c"), vec![key("b")]),
            (key("d"), vec![key("a")]),
        ])
    }

    #[test]
    fn pending_steps_are_ready_once_every_upstream_succeeded() {
        use StepStatus::*;
        let n = next(
            &steps(&[
                ("a", Pending),
                ("b", Pending),
                ("c", Pending),
                ("d", Pending),
            ]),
            &graph(),
            false,
        );
        assert_eq!(n.ready, vec![key("a")]);
        assert!(n.end.is_none());
        let n = next(
            &steps(&[
                ("a", UpToDate),
                ("b", Running),
                ("c", Pending),
                ("d", Pending),
            ]),
            &graph(),
            false,
        );
        assert_eq!(n.ready, vec![key("d")], "c waits for the running b");
        assert_eq!(n.running.len(), 1);
    }

    #[test]
    fn a_failed_upstream_skips_and_the_run_fails_once_all_ended() {
        use StepStatus::*;
        let n = next(
            &steps(&[
                ("a", Succeeded),
                ("b", Failed),
                ("c", Pending),
                ("d", Succeeded),
            ]),
            &graph(),
            false,
        );
        assert_eq!(n.skip, vec![(key("c"), key("b"))]);
        assert!(n.end.is_none(), "not ended while a skip is to be recorded");
        let n = next(
            &steps(&[
                ("a", Succeeded),
                ("b", Failed),
                ("c", Skipped),
                ("d", Succeeded),
            ]),
            &graph(),
            false,
        );
        let end = n.end.expect("ended");
        assert_eq!(end.status, RunStatus::Failed);
        assert_eq!(end.error.as_deref(), Some("1 step(s) failed"));
    }

    #[test]
    fn steps_behind_a_parked_one_make_the_run_wait_unless_cancelled() {
        use StepStatus::*;
        let s = steps(&[
            ("a", Succeeded),
            ("b", Waiting),
            ("c", Pending),
            ("d", Succeeded),
        ]);
        let n = next(&s, &graph(), false);
        assert!(n.ready.is_empty() && n.skip.is_empty());
        assert_eq!(n.end.map(|e| e.status), Some(RunStatus::Waiting));
        let s = steps(&[
            ("a", Succeeded),
            ("b", Succeeded),
            ("c", Succeeded),
            ("d", Cancelled),
        ]);
        assert_eq!(
            next(&s, &graph(), true).end.map(|e| e.status),
            Some(RunStatus::Cancelled)
        );
        let s = steps(&[
            ("a", Succeeded),
            ("b", Succeeded),
            ("c", UpToDate),
            ("d", Succeeded),
        ]);
        assert_eq!(
            next(&s, &graph(), false).end.map(|e| e.status),
            Some(RunStatus::Succeeded)
        );
    }
}
