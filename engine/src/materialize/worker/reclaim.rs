//! A worker's part of a step that is not a plain start: reading what other workers published before
//! a step starts, and re-claiming a dead owner's running step (reconcile, then record or redo).

use super::super::*;
use crate::store::Claimed;

impl Executor {
    /// Reads what the store has published of `key` and the step keys it reads into the run's
    /// latest materializations (another worker may have materialized them since).
    pub(super) async fn refresh_latest(&self, key: &StepKey) -> Result<(), EngineError> {
        let spec = &self.project.assets[&key.asset];
        let mut keys = vec![key.clone()];
        let mut whole: Vec<AssetKey> = Vec::new();
        for u in upstreams(&self.project, spec, key) {
            match (u.steps(), u) {
                (Some(steps), _) => keys.extend(steps),
                (None, Upstream::All(a)) => whole.push(a),
                (None, _) => {}
            }
        }
        let mut found = Vec::new();
        if !whole.is_empty() {
            found.extend(
                self.store
                    .latest_materializations()
                    .await?
                    .into_iter()
                    .filter(|(k, _)| whole.contains(&k.asset)),
            );
        }
        for k in keys {
            if let Some(m) = self.store.latest_materialization(&k).await? {
                found.push((k, m));
            }
        }
        let mut latest = self.run.latest.lock().expect("latest lock");
        for (k, m) in found {
            if latest.get(&k).is_none_or(|l| l.id < m.id) {
                latest.insert(k, m);
            }
        }
        Ok(())
    }

    /// Re-claims a running step whose owner's lease ran out (or whose owner is a dead process on
    /// this host) and reconciles it: a commit of its attempt that landed is recorded; otherwise
    /// the step runs again as the next attempt. A `pending` report: someone else got it first.
    pub(super) async fn reclaim(&self, rec: StepRecord, takeover: Option<String>) -> StepReport {
        let key = rec.step_key();
        let Some(seq) = rec.seq else {
            return StepReport::new(&key);
        };
        let claim = self.claim_for(&key);
        let ev = NewEvent::of(
            &self.run.run_id,
            Some(&rec.step_id),
            format!(
                "{key}: attempt {} re-claimed by {} (its owner let it go or is gone)",
                rec.attempt, self.run.owner
            ),
            &Event::Log {
                level: "warn".into(),
            },
        );
        let now = self.clock.now_ms();
        match self
            .store
            .reclaim_step(&claim, (rec.attempt, seq), ev, now, takeover.as_deref())
            .await
        {
            Ok(Claimed::Got(())) => self.run.claims.hold(&key, now),
            Ok(_) => return StepReport::new(&key),
            Err(e) => {
                tracing::warn!("cannot re-claim {key}: {e}");
                return StepReport::new(&key);
            }
        }
        tracing::warn!(
            attempt = rec.attempt,
            seq,
            "re-claimed a step whose owner's lease ran out"
        );
        match self.landed_outcome(&self.run.run_id, &rec).await {
            Ok(Some(outcome)) => {
                let mut report = StepReport::new(&key);
                report.status = outcome.status;
                report.delta_version = outcome.materialization.as_ref().map(|m| m.delta_version);
                let recorded = self
                    .store
                    .finish_claimed_step(&self.run.owner, &self.run.run_id, &key, outcome)
                    .await;
                self.run.claims.end(&key);
                match recorded {
                    Ok(Some(_)) => {
                        tracing::info!("its commit had landed: recorded, not recomputed");
                        report
                    }
                    Ok(None) => StepReport::new(&key),
                    Err(e) => {
                        tracing::error!("cannot record {key}'s landed commit: {e}");
                        StepReport::new(&key)
                    }
                }
            }
            Ok(None) => match self.refresh_latest(&key).await {
                Ok(()) => self.run_step_from(key, rec.attempt.max(0) as u32 + 1).await,
                // Still held: the worker lets it go, to be re-claimed again.
                Err(e) => {
                    tracing::warn!("cannot read {key}'s upstreams from the store: {e}");
                    StepReport::new(&key)
                }
            },
            Err(e) => {
                // The claim stays ours until its lease runs out; then it is re-claimed again.
                tracing::error!("cannot reconcile {key} with the warehouse: {e}");
                StepReport::new(&key)
            }
        }
    }

    /// Releases the claim on `key` whose step's end could not be recorded, trying for up to a lease
    /// (after that the claim runs out by itself: nobody renews it any more).
    pub(super) async fn release_unrecorded(&self, key: &StepKey) {
        self.run.claims.end(key);
        let deadline = self.clock.now_ms() + self.lease_ms();
        let mut pause = Duration::from_millis(100);
        loop {
            match self.store.release_claim(key, &self.run.owner).await {
                Ok(()) => {
                    tracing::warn!("{key}: its end could not be recorded; released, to be re-claimed and reconciled");
                    return;
                }
                Err(e) if self.clock.now_ms() < deadline => {
                    tracing::debug!("cannot release the claim on {key} yet: {e}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(
                        "cannot release the claim on {key}: {e}; it runs out by itself"
                    );
                    return;
                }
            }
        }
    }
}
