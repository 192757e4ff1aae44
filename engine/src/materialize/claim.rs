//! Step claims: a run computes a step key only while it holds the key's claim in the run store, so two
//! runs that overlap never materialize the same asset (partition) at once, and never both commit it.
//!
//! A step takes the claim in the same transaction that starts its attempt. When another live run holds
//! it, the step waits (polling, on the engine's clock) — or, with `no_wait`, is skipped saying who holds
//! it. After the claim is granted the step looks at the store again: if the other run materialized the
//! key meanwhile and it is now fresh, the step ends up to date, "materialized by run X". While the step
//! computes, one heartbeat task per execution renews all its claims in one statement; a step whose claim
//! was lost does not commit. Ending the step releases the claim in the transaction that records the end
//! (a statement of the store's `finish_step`). A holder whose process is gone (same host, dead pid) is taken over at once
//! instead of after its lease expires.

use super::*;
use crate::store::{ClaimLimits, Claimed, StartedAttempt, StepClaim};

/// First and longest pause between attempts to take a held claim.
const POLL_FIRST: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);

/// The step keys one execution of a run holds claims on, and those a renewal found taken over.
#[derive(Default)]
pub(super) struct HeldClaims {
    held: Mutex<HashSet<StepKey>>,
    lost: Mutex<HashSet<StepKey>>,
    /// When the store last renewed (or granted) this execution's claims, in ms since the epoch.
    renewed_at_ms: std::sync::atomic::AtomicI64,
}

impl HeldClaims {
    /// The claim on `step` was granted at `now_ms`.
    pub(super) fn hold(&self, step: &StepKey, now_ms: i64) {
        self.lost.lock().expect("lost lock").remove(step);
        let mut held = self.held.lock().expect("held lock");
        // The first claim held starts the clock: claims granted while others are held are as fresh
        // as the last renewal, which covered every claim held then.
        if held.is_empty() {
            self.renewed_at_ms
                .store(now_ms, std::sync::atomic::Ordering::Relaxed);
        }
        held.insert(step.clone());
    }

    /// Whether this execution may still commit at `now_ms` under a lease of `lease`: its last
    /// successful renewal is less than half a lease old. A process cut off from the store stops
    /// committing well before its claims run out and another owner takes them over — the other
    /// half is the margin for a commit already under way.
    pub(super) fn may_commit(&self, now_ms: i64, lease: Duration) -> bool {
        let at = self
            .renewed_at_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        now_ms - at < (lease / 2).as_millis() as i64
    }

    /// The step ended (its claim was released with it).
    pub(super) fn end(&self, step: &StepKey) {
        self.held.lock().expect("held lock").remove(step);
    }

    /// Whether this execution holds the claim on `step`.
    pub(super) fn holds(&self, step: &StepKey) -> bool {
        self.held.lock().expect("held lock").contains(step)
    }

    /// True when another run took the claim on `step` over (the step must not commit).
    pub(super) fn lost(&self, step: &StepKey) -> bool {
        self.lost.lock().expect("lost lock").contains(step)
    }

    fn snapshot(&self) -> Vec<StepKey> {
        self.held
            .lock()
            .expect("held lock")
            .iter()
            .cloned()
            .collect()
    }

    /// After a renewal of the claims in `asked` that renewed `renewed`: the ones still held that were
    /// not renewed are lost.
    fn renewed(&self, asked: Vec<StepKey>, renewed: &HashSet<StepKey>, at_ms: i64) {
        self.renewed_at_ms
            .store(at_ms, std::sync::atomic::Ordering::Relaxed);
        let held = self.held.lock().expect("held lock");
        let mut lost = self.lost.lock().expect("lost lock");
        for step in asked {
            if !renewed.contains(&step) && held.contains(&step) {
                lost.insert(step);
            }
        }
    }
}

/// Renews every claim of one execution in one statement, every `renew_every`, until dropped: one
/// task per execution, not per step.
pub(super) struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    /// Aborts `task` when dropped.
    pub(super) fn of(task: tokio::task::JoinHandle<()>) -> Self {
        Heartbeat(task)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether `owner` (`host:pid:run`) is a process on this host that no longer exists.
pub(super) fn owner_is_dead(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    match (
        parts.next(),
        parts.next().and_then(|p| p.parse::<i64>().ok()),
    ) {
        (Some(host), Some(pid)) => {
            host == crate::store::host_name() && !crate::recovery::process_alive(pid)
        }
        _ => false,
    }
}

impl Executor {
    /// The claim lease, in milliseconds.
    pub(super) fn lease_ms(&self) -> i64 {
        self.project.config.settings.lease.as_millis() as i64
    }

    /// The concurrency limits `key`'s claim counts against: `[limits.tags]` of its asset's tags,
    /// and the run's own maximum (its `concurrency` tag).
    pub(super) fn claim_limits(&self, key: &StepKey) -> ClaimLimits {
        let tags = self
            .project
            .assets
            .get(&key.asset)
            .map(|a| a.tags.as_slice())
            .unwrap_or_default();
        let mut limits: Vec<(String, i64)> = self
            .project
            .config
            .settings
            .tag_limits
            .iter()
            .filter(|(tag, _)| tags.iter().any(|t| t == *tag))
            .map(|(tag, max)| (format!("tag:{tag}"), *max as i64))
            .collect();
        if let Some(max) = self.run.max_steps {
            limits.push((format!("run:{}", self.run.run_id), max as i64));
        }
        ClaimLimits::new(limits)
    }

    pub(super) fn claim_for(&self, key: &StepKey) -> StepClaim {
        StepClaim {
            step: key.clone(),
            run_id: self.run.run_id.clone(),
            owner: self.run.owner.clone(),
            lease_until_ms: self.clock.now_ms() + self.lease_ms(),
        }
    }

    /// Starts attempt `attempt` of `key` under its claim, waiting while another live run holds the
    /// claim. `Err(report)` when the step ended without starting: skipped (`no_wait`) or cancelled.
    pub(super) async fn start_claimed(
        &self,
        key: &StepKey,
        attempt: u32,
        event: NewEvent,
    ) -> Result<Result<StartedAttempt, StepReport>, EngineError> {
        let mut pause = POLL_FIRST;
        let mut announced = false;
        let mut limited = false;
        let mut takeover: Option<String> = None;
        loop {
            let claim = self.claim_for(key);
            // Workers share the run: the step starts only while still ready, and a claim another
            // live owner holds means it is someone else's (or not yet anyone's) work. A step under
            // `[limits.tags]` (or its run's maximum) also counts the live claims of its limits, in
            // the claim's transaction, and (in one process) waits while one is full.
            let limits = self.claim_limits(key);
            let started = if !self.run.shared && limits.0.is_empty() {
                self.store
                    .start_claimed_step(
                        &claim,
                        attempt as i64,
                        event.clone(),
                        self.clock.now_ms(),
                        takeover.as_deref(),
                    )
                    .await?
            } else {
                let started = self
                    .store
                    .start_ready_step(
                        &claim,
                        &limits,
                        attempt as i64,
                        event.clone(),
                        self.clock.now_ms(),
                        takeover.as_deref(),
                    )
                    .await?;
                match started {
                    Claimed::Got(s) => Ok(s),
                    Claimed::Held(h)
                        if self.run.shared && owner_is_dead(&h.owner) && takeover.is_none() =>
                    {
                        takeover = Some(h.owner);
                        continue;
                    }
                    // Workers: not taken (held, moved on, at a limit) is reported `pending`,
                    // which records nothing.
                    _ if self.run.shared => return Ok(Err(StepReport::new(key))),
                    Claimed::Held(h) => Err(h),
                    Claimed::Limited(limit) => {
                        if !limited {
                            limited = true;
                            tracing::info!("{key} waits for a slot of its limit {limit}");
                        }
                        tokio::select! {
                            _ = self.clock.sleep(pause) => {}
                            _ = self.run.cancel.cancelled() => {
                                let reason = Some(format!("cancelled while waiting for a slot of {limit}"));
                                let report = StepReport::new(key);
                                return Ok(Err(self.end_step(report, StepStatus::Cancelled, None, reason).await?));
                            }
                        }
                        pause = (pause * 2).min(POLL_MAX);
                        continue;
                    }
                    Claimed::Moved => {
                        return Err(EngineError::Internal(format!(
                            "step {key} is not ready to start attempt {attempt}"
                        )))
                    }
                }
            };
            let holder = match started {
                Ok(started) => {
                    self.run.claims.hold(&claim.step, self.clock.now_ms());
                    return Ok(Ok(started));
                }
                Err(holder) => holder,
            };
            if self.run.no_wait {
                let reason = format!(
                    "being materialized by run {} (--no-wait)",
                    short(holder.run_id.as_str())
                );
                let report = StepReport::new(key);
                return Ok(Err(self
                    .end_step(report, StepStatus::Skipped, None, Some(reason))
                    .await?));
            }
            if owner_is_dead(&holder.owner) {
                // The dead run is settled first (here, or by the process that took it over), so
                // its landed commit of this step key is recorded before this run commits a newer
                // one: records keep the tables' order. Its settler releases the claim.
                let dead = self.store.get_run(holder.run_id.as_str()).await?;
                if dead.status.is_active() && dead.run_id != self.run.run_id {
                    for r in self.recover_interrupted_runs().await? {
                        tracing::warn!(run_id = %r.run_id, recorded = ?r.recorded, abandoned = ?r.abandoned, "settled an interrupted run");
                    }
                    if self
                        .store
                        .get_run(holder.run_id.as_str())
                        .await?
                        .status
                        .is_active()
                    {
                        tokio::select! {
                            _ = self.clock.sleep(pause) => {}
                            _ = self.run.cancel.cancelled() => {
                                let reason = Some("cancelled while an interrupted run was settled".to_string());
                                let report = StepReport::new(key);
                                return Ok(Err(self.end_step(report, StepStatus::Cancelled, None, reason).await?));
                            }
                        }
                        pause = (pause * 2).min(POLL_MAX);
                    }
                    continue;
                }
                takeover = Some(holder.owner);
                continue;
            }
            if !announced {
                announced = true;
                let msg = format!(
                    "{key} is being materialized by run {}; waiting for it",
                    holder.run_id
                );
                tracing::info!("{msg}");
                let event = Event::StepWaiting {
                    holder_run: holder.run_id.to_string(),
                };
                let ev = NewEvent::of(&self.run.run_id, Some(&key.to_string()), msg, &event);
                self.store.append_events(&[ev]).await?;
            }
            tokio::select! {
                _ = self.clock.sleep(pause) => {}
                _ = self.run.cancel.cancelled() => {
                    let reason = Some("cancelled while waiting for another run's step".to_string());
                    let report = StepReport::new(key);
                    return Ok(Err(self.end_step(report, StepStatus::Cancelled, None, reason).await?));
                }
            }
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// Called once the claim is held, before computing: if another run materialized `spec` since this
    /// run read the store and it is fresh now, ends the step up to date and returns its report.
    /// `started` says which sequence number the asset partition had before this attempt's: numbers
    /// are allocated to every attempt of the asset by any run, so when that is the one this run
    /// already knows, nobody else can have materialized the asset and the store is not read again.
    ///
    /// Otherwise another run is (or was) at work on the same assets: this run first takes in what
    /// the store has published since it read it, upstreams included, so the step neither skips to
    /// nor computes from data older than what the store holds (forced runs too: a forced step that
    /// comes after another run's newer result computes from the newer upstreams).
    pub(super) async fn done_elsewhere(
        &self,
        spec: &crate::project::AssetSpec,
        key: &StepKey,
        started: StartedAttempt,
    ) -> Result<Option<StepReport>, EngineError> {
        let known_seq = self
            .run
            .latest
            .lock()
            .expect("latest lock")
            .get(key)
            .map_or(0, |m| m.m.seq);
        if started.previous == known_seq {
            return Ok(None);
        }
        // Only the step keys this step reads: they ended before it in this run, so no later step
        // of this run relies on what it knew of them.
        let reads = upstreams(&self.project, spec, key);
        let read = |step: &StepKey| {
            reads.iter().any(|u| match u {
                Upstream::Step(k) => k == step,
                Upstream::Window(asset, parts) => {
                    step.asset == *asset
                        && step.partition.as_ref().is_some_and(|p| parts.contains(p))
                }
                Upstream::All(asset) => step.asset == *asset,
            })
        };
        let published = self.store.latest_materializations().await?;
        {
            let mut latest = self.run.latest.lock().expect("latest lock");
            for (step, m) in published {
                if read(&step) && latest.get(&step).is_none_or(|l| l.id < m.id) {
                    latest.insert(step, m);
                }
            }
        }
        if self.run.force {
            return Ok(None);
        }
        let newer = self
            .store
            .latest_materialization(key)
            .await?
            .filter(|m| m.m.run_id != self.run.run_id);
        let Some(m) = newer else { return Ok(None) };
        let by = {
            let mut latest = self.run.latest.lock().expect("latest lock");
            if latest.get(key).map(|l| l.id) == Some(m.id) {
                return Ok(None);
            }
            latest.insert(key.clone(), m.clone());
            (freshness(&self.project, spec, key, &latest) == Freshness::Fresh)
                .then(|| m.m.run_id.clone())
        };
        match by {
            Some(run) => {
                let reason = format!("materialized by run {} meanwhile", short(run.as_str()));
                let report = StepReport::new(key);
                Ok(Some(
                    self.end_step(report, StepStatus::UpToDate, None, Some(reason))
                        .await?,
                ))
            }
            None => Ok(None),
        }
    }

    /// Keeps the run's lease and the claims of `claims` (owned by `owner`) alive while the execution
    /// works.
    pub(super) fn heartbeat(&self, owner: String, claims: Arc<HeldClaims>) -> Heartbeat {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let (lease, every) = (self.lease_ms(), self.project.config.settings.renew_every);
        Heartbeat(tokio::spawn(async move {
            loop {
                clock.sleep(every).await;
                let asked = claims.snapshot();
                let now = clock.now_ms();
                match store.renew_claims(&owner, now + lease).await {
                    Ok(renewed) => claims.renewed(asked, &renewed.into_iter().collect(), now),
                    // A store hiccup is not a lost claim; try again at the next beat.
                    Err(e) => tracing::warn!("could not renew this run's step claims: {e}"),
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_owners_are_recognised_only_on_this_host() {
        let me = format!("{}:{}:r", crate::store::host_name(), std::process::id());
        assert!(!owner_is_dead(&me));
        // 999999999 is above any pid_max; another host is never judged.
        assert!(owner_is_dead(&format!(
            "{}:999999999:r",
            crate::store::host_name()
        )));
        assert!(!owner_is_dead("some-other-host:999999999:r"));
        assert!(!owner_is_dead("garbage"));
    }
}
