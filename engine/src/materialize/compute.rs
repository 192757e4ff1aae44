//! Stage (compute) of a step's attempt: register what the step reads, run its kind, check what the
//! kind reported (its checks, a declared schema), merge an incremental `merge` asset's rows into its
//! base, and stage the output as invisible data files — all under the step's timeout and the run's
//! cancel token. Nothing here is visible to anyone: the commit stage makes it so.

use super::stages::{declared_schema_holds, kind_checks};
use super::*;

/// What an attempt computed and staged.
pub(super) struct Computed {
    /// The staged data files.
    pub(super) staged: Staged,
    /// What it read of each upstream.
    pub(super) reads: Vec<UpstreamRead>,
    /// The kind's metadata.
    pub(super) metadata: BTreeMap<String, serde_json::Value>,
    /// The output's column lineage.
    pub(super) columns: crate::column_lineage::ColumnLineage,
    /// What the commit replaces.
    pub(super) scope: WriteScope,
    /// A merge's (inserted, updated, deleted) counts.
    pub(super) counts: Option<(i64, i64, i64)>,
}

impl Executor {
    /// Computes and stages attempt `attempt` of `step` (`base`: the published materialization an
    /// incremental step appends to). A parked step is `AttemptError::Parked`, a cancelled one
    /// `Cancelled`; a step over its timeout failed, retryably.
    pub(super) async fn compute(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
        attempt: u32,
        kind: &dyn crate::kinds::AssetKind,
        base: Option<&Materialization>,
    ) -> Result<Computed, AttemptError> {
        let key = &spec.key;
        let step_id = step.to_string();
        let state = &*self.run;
        let mut scope = match (&spec.partitions, &step.partition) {
            (Some(def), Some(p)) => WriteScope::Partition {
                key: p.clone(),
                values: def.values(p),
            },
            _ if base.is_some() => WriteScope::Append,
            _ => WriteScope::Table,
        };
        let scratch = self.run_scratch(&state.run_id).join(format!(
            "{}-{attempt}",
            step_id.replace(['/', '[', ']', '|'], "__")
        ));
        let compute = async {
            let (session, upstream, reads) = match self.register_upstreams(spec, step).await {
                Ok(r) => r,
                Err(InputError::Step(e)) => return Err(e),
                Err(InputError::Store(e)) => return Ok(Err(Interrupted::Store(e))),
            };
            let watermark = match (spec.incremental.as_ref().and_then(|i| i.watermark()), base) {
                (Some(column), Some(b)) => {
                    Some(self.watermark(key, b.m.delta_version, column).await?)
                }
                _ => None,
            };
            let ctx = StepContext {
                run_id: state.run_id.clone(),
                step: step.clone(),
                attempt,
                spec: spec.clone(),
                project_root: self.project.config.root.clone(),
                session,
                upstream,
                scratch: scratch.clone(),
                events: crate::kinds::EventSink::new(
                    Arc::new(crate::store::StoreEvents(self.store.clone())),
                    state.run_id.clone(),
                    step,
                )
                .with_spill(self.step_log_file(&state.run_id, &step_id, attempt)),
                signal: state.signals.get(&step_id).cloned(),
                watermark,
                warehouse: Arc::new(self.warehouse.clone()),
                checkpoints: Arc::new(crate::store::StoreCheckpoints(self.store.clone())),
                run_budget: state.budget,
            };
            let output = kind.execute(&ctx).await;
            // The step's last log lines are stored whether it succeeded or not.
            ctx.events.finish().await;
            let output = output?;
            if let StepData::Waiting { reason } = output.data {
                return Ok(Err(Interrupted::Parked(reason)));
            }
            let StepOutput {
                data,
                metadata,
                checks,
                mut columns,
            } = output;
            if columns.is_empty() {
                columns = spec.declared_columns.clone();
            }
            kind_checks(&ctx.events, &checks).await?;
            let mut stream = self.to_stream(data).await?;
            declared_schema_holds(spec, &stream.schema())?;
            let mut counts = None;
            if let Some(crate::project::Incremental::Merge {
                unique_key, delete, ..
            }) = &spec.incremental
            {
                let m = self
                    .merge(key, (unique_key, delete.as_deref()), base, stream)
                    .await?;
                stream = m.stream;
                scope = match m.remove {
                    Some(remove) => WriteScope::Merge { remove },
                    None => WriteScope::Table,
                };
                counts = Some(m.counts);
            }
            let staged = self
                .warehouse
                .stage(key, stream, &scope)
                .await
                .map_err(|e| match e {
                    // The data stream failed while it was written: class it by its cause.
                    crate::error::WarehouseError::DataFusion(d) => {
                        StepError::datafusion("computing the data", &d)
                    }
                    other => StepError::retryable(other),
                })?;
            Ok::<_, StepError>(Ok(Computed {
                staged,
                reads,
                metadata,
                columns,
                scope,
                counts,
            }))
        };
        let timed = async {
            match spec.timeout {
                Some(t) => tokio::time::timeout(t, compute).await.unwrap_or_else(|_| {
                    Err(StepError::retryable(format!(
                        "timed out after {}",
                        humantime(t)
                    )))
                }),
                None => compute.await,
            }
        };
        let result = tokio::select! {
            r = timed => r,
            _ = state.cancel.cancelled() => return Err(AttemptError::Cancelled),
        };
        if scratch.exists() {
            let _ = std::fs::remove_dir_all(&scratch);
        }
        result.map_err(AttemptError::Failed)?.map_err(|i| match i {
            Interrupted::Parked(reason) => AttemptError::Parked(reason),
            Interrupted::Store(e) => AttemptError::Store(e),
        })
    }
}

fn humantime(d: Duration) -> String {
    if d.as_secs() >= 60 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
