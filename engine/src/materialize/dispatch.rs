//! Dispatching a recorded plan: launch ready steps up to the concurrency limit, resolve downstream steps
//! as each ends (a failed or skipped upstream skips its dependents, transitively), and record how every
//! step ended. A parked step (`waiting`) ends its task and frees its slot; its dependents stay pending
//! until a later execution of the run, after the step is signalled. A resumed run starts from the steps
//! its earlier executions finished (`done`).

use super::*;

/// Steps that may wait for their commits while others compute (beyond the compute slots).
const WAITING_TO_COMMIT: usize = 32;

/// The step graph of a plan: for each planned step, the planned steps it waits for.
pub(super) fn plan_upstreams(
    project: &crate::project::Project,
    order: &[StepKey],
) -> HashMap<StepKey, Vec<StepKey>> {
    let in_plan: HashSet<&StepKey> = order.iter().collect();
    let mut planned_of: HashMap<&AssetKey, Vec<&StepKey>> = HashMap::new();
    for k in order {
        planned_of.entry(&k.asset).or_default().push(k);
    }
    let mut upstream = HashMap::new();
    for k in order {
        let mut ups: Vec<StepKey> = Vec::new();
        for u in upstreams(project, &project.assets[&k.asset], k) {
            match u {
                // A mapping to no partition reads the upstream's table empty: after one of its
                // planned partitions, so that the table exists.
                Upstream::Window(a, parts) if parts.is_empty() => ups.extend(
                    planned_of
                        .get(&a)
                        .and_then(|p| p.first())
                        .map(|s| (*s).clone()),
                ),
                Upstream::Step(_) | Upstream::Window(..) => ups.extend(
                    u.steps()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| in_plan.contains(s)),
                ),
                Upstream::All(a) => ups.extend(
                    planned_of
                        .get(&a)
                        .into_iter()
                        .flatten()
                        .map(|s| (*s).clone()),
                ),
            }
        }
        upstream.insert(k.clone(), ups);
    }
    upstream
}

impl Executor {
    /// Runs the steps of `order` not already `done`, `concurrency` computing at once; returns how each ended.
    pub(super) async fn dispatch(
        &self,
        order: &[StepKey],
        done: &HashMap<StepKey, StepStatus>,
        concurrency: usize,
    ) -> Result<HashMap<StepKey, StepReport>, EngineError> {
        let is_ok = |s: &StepStatus| matches!(s, StepStatus::Succeeded | StepStatus::UpToDate);
        let upstream = plan_upstreams(&self.project, order);
        let mut downstream: HashMap<StepKey, Vec<&StepKey>> = HashMap::new();
        for k in order {
            for u in &upstream[k] {
                downstream.entry(u.clone()).or_default().push(k);
            }
        }
        let mut blocked: HashMap<&StepKey, StepKey> = HashMap::new();
        // Steps still to run wait for their upstreams in the plan that have not succeeded yet; an
        // upstream that ended otherwise in an earlier execution blocks them.
        let mut remaining: HashMap<&StepKey, usize> = HashMap::new();
        for k in order.iter().filter(|k| !done.contains_key(*k)) {
            let mut n = 0;
            for d in &upstream[k] {
                match done.get(d) {
                    Some(s) if is_ok(s) => {}
                    Some(StepStatus::Waiting) | None => n += 1,
                    Some(_) => {
                        blocked.entry(k).or_insert_with(|| d.clone());
                    }
                }
            }
            remaining.insert(k, n);
        }
        let mut reports: HashMap<StepKey, StepReport> = done
            .iter()
            .map(|(k, s)| {
                let mut r = StepReport::new(k);
                r.status = *s;
                (k.clone(), r)
            })
            .collect();
        let mut ready: VecDeque<&StepKey> = VecDeque::new();
        for k in order.iter().filter(|k| remaining.get(*k) == Some(&0)) {
            match blocked.get(k) {
                Some(up) => {
                    let reason = format!("upstream '{up}' did not succeed");
                    let r = self
                        .end_step_resuming(StepReport::new(k), StepStatus::Skipped, reason)
                        .await?;
                    reports.insert(k.clone(), r);
                }
                None => ready.push_back(k),
            }
        }
        let mut running: JoinSet<StepReport> = JoinSet::new();
        let mut running_keys: HashMap<tokio::task::Id, StepKey> = HashMap::new();
        loop {
            // More tasks than compute slots: a step waiting for its commit holds no slot.
            while running.len() < concurrency + WAITING_TO_COMMIT && !self.run.cancel.is_cancelled()
            {
                let Some(key) = ready.pop_front() else { break };
                let executor = self.clone();
                let k = key.clone();
                let span = tracing::info_span!("step", run_id = %self.run.run_id, step_id = %key, asset = %key.asset);
                let handle =
                    running.spawn(async move { executor.run_step(k).await }.instrument(span));
                running_keys.insert(handle.id(), key.clone());
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = running.join_next_with_id() => j,
                _ = self.run.cancel.cancelled(), if ready.iter().next().is_some() => {
                    // Stop launching; running steps observe the token themselves.
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let report = match joined {
                Ok((_, r)) => r,
                Err(e) => {
                    let key = running_keys
                        .get(&e.id())
                        .cloned()
                        .ok_or_else(|| EngineError::Internal("unknown task".into()))?;
                    let msg = format!("step panicked: {e}");
                    let report = StepReport::new(&key);
                    self.end_step(report, StepStatus::Failed, Some(msg), None)
                        .await?
                }
            };
            let ok = is_ok(&report.status);
            let parked = report.status == StepStatus::Waiting;
            // Resolve downstream steps; skips cascade through a worklist. A parked step's dependents
            // keep waiting for it.
            let step = report.step();
            let mut work = if parked {
                Vec::new()
            } else {
                vec![(step.clone(), ok)]
            };
            reports.insert(step, report);
            while let Some((done, ok)) = work.pop() {
                for &child in downstream.get(&done).into_iter().flatten() {
                    let Some(n) = remaining.get_mut(child) else {
                        continue;
                    };
                    *n -= 1;
                    if !ok {
                        blocked.entry(child).or_insert_with(|| done.clone());
                    }
                    if *n > 0 {
                        continue;
                    }
                    let Some((&child, _)) = remaining.get_key_value(child) else {
                        continue;
                    };
                    match blocked.get(child) {
                        Some(up) => {
                            let (status, reason) = if self.run.cancel.is_cancelled() {
                                (
                                    StepStatus::Cancelled,
                                    "run cancelled before the step started".to_string(),
                                )
                            } else {
                                (
                                    StepStatus::Skipped,
                                    format!("upstream '{up}' did not succeed"),
                                )
                            };
                            let r = self
                                .end_step_resuming(StepReport::new(child), status, reason)
                                .await?;
                            if let Some(o) = &self.run.observer {
                                o.step_finished(&r);
                            }
                            reports.insert(child.clone(), r);
                            work.push((child.clone(), false));
                        }
                        None => ready.push_back(child),
                    }
                }
            }
        }
        // Whatever never started was cancelled — unless it waits behind a parked step.
        let parked = reports.values().any(|r| r.status == StepStatus::Waiting);
        for key in order {
            if !reports.contains_key(key) && (self.run.cancel.is_cancelled() || !parked) {
                let r = self
                    .end_step_resuming(
                        StepReport::new(key),
                        StepStatus::Cancelled,
                        "run cancelled before the step started".into(),
                    )
                    .await?;
                reports.insert(key.clone(), r);
            }
        }
        Ok(reports)
    }
}
