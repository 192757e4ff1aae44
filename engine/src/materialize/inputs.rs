//! What a step reads and returns: its upstreams registered in the run's session at the recorded
//! versions, and the data a kind produced (batches, a stream, or files) decoded into one stream.

use super::*;

impl Executor {
    /// Registers what step `step` reads of each upstream (the partition mapping's [`upstreams`]) at
    /// its latest recorded version, and returns the session the step runs in: the run's shared session
    /// when neither the step nor what it reads is partitioned (each upstream is registered there once
    /// per version), otherwise a session of the step's own, in which a partitioned upstream is the rows
    /// of the partitions this step reads.
    pub(super) async fn register_upstreams(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
    ) -> Result<(SessionContext, Vec<UpstreamInput>, Vec<UpstreamRead>), InputError> {
        let ups = upstreams(&self.project, spec, step);
        let own = step.partition.is_some()
            || ups
                .iter()
                .any(|u| !matches!(u, Upstream::Step(s) if s.partition.is_none()));
        let session = if own {
            crate::session::sibling(&self.run.session)
        } else {
            self.run.session.clone()
        };
        let mut inputs = Vec::new();
        let mut reads = Vec::new();
        for up in ups {
            let dep = up.asset().clone();
            // The materializations read: one, or the latest of every partition.
            let read: Vec<Materialization> = {
                let latest = self.run.latest.lock().expect("latest lock");
                match &up {
                    Upstream::Step(s) => latest.get(s).cloned().into_iter().collect(),
                    Upstream::Window(..) => {
                        let mut read = Vec::new();
                        for s in up.steps().unwrap_or_default() {
                            match latest.get(&s) {
                                Some(m) => read.push(m.clone()),
                                None => {
                                    return Err(StepError::permanent(format!(
                                        "upstream '{s}' has never been materialized; include it in the selection (e.g. '+{}')",
                                        spec.key
                                    ))
                                    .into())
                                }
                            }
                        }
                        read
                    }
                    Upstream::All(a) => latest
                        .iter()
                        .filter(|(k, _)| &k.asset == a && k.partition.is_some())
                        .map(|(_, m)| m.clone())
                        .collect(),
                }
            };
            // An explicit mapping that names no partition (the day before the first day): the step
            // reads the upstream's table with no rows, as Dagster does with
            // `allow_nonexistent_upstream_partitions`; nothing is recorded as read.
            if matches!(&up, Upstream::Window(_, parts) if parts.is_empty()) {
                let carrier = {
                    let latest = self.run.latest.lock().expect("latest lock");
                    latest
                        .iter()
                        .filter(|(k, _)| k.asset == dep)
                        .map(|(_, m)| m.m.delta_version)
                        .max()
                };
                if let Some(version) = carrier {
                    let version = self.read_version(&dep, version).await;
                    let provider = self
                        .warehouse
                        .provider(&dep, Some(version), &session)
                        .await
                        .map_err(|e| upstream_error(&dep, e))?
                        .map(|(p, _)| p)
                        .ok_or_else(|| StepError::permanent(format!("upstream '{dep}' is recorded as materialized but its Delta table is missing")))?;
                    crate::session::register_partitions(&session, dep.as_str(), provider, &[])
                        .map_err(|e| StepError::datafusion("cannot register upstream", &e))?;
                    inputs.push(self.whole_input(&dep, version)?);
                    continue;
                }
            }
            if read.is_empty() {
                let what = match &up {
                    Upstream::Step(s) => format!("upstream '{s}' has never been materialized"),
                    Upstream::Window(a, _) => {
                        format!("upstream '{a}' has no partition in this step's window")
                    }
                    Upstream::All(a) => format!("upstream '{a}' has no materialized partition"),
                };
                return Err(StepError::permanent(format!(
                    "{what}; include it in the selection (e.g. '+{}')",
                    spec.key
                ))
                .into());
            }
            // A source that is not copied: exactly the files its observation recorded.
            let source = self.in_place(&self.project.assets[&dep]);
            if let (Some(config), Some(m)) = (source, read.first()) {
                // Registrations are remembered by version; an observation's is its negated id.
                let cache = -m.id;
                let already = !own && self.run.serves(&dep, cache);
                if !already {
                    let provider = self.source_table(config, m, &session).await?;
                    self.register_input(&session, own, &dep, provider, cache)?;
                }
                inputs.push(self.whole_input(&dep, -1)?);
                reads.push(UpstreamRead {
                    key: dep.clone(),
                    partition: None,
                    materialization_id: Some(m.id),
                    delta_version: None,
                });
                continue;
            }
            // A table's latest commit holds every partition's latest files (a compaction of it, when
            // `assets optimize` rewrote it).
            let version = read.iter().map(|m| m.m.delta_version).max().unwrap_or(0);
            let version = self.read_version(&dep, version).await;
            // The partitions this step sees of the upstream (none: all of it).
            let partitions: Vec<PartitionKey> = match &up {
                Upstream::Step(s) => s.partition.clone().into_iter().collect(),
                Upstream::Window(_, parts) => parts.clone(),
                Upstream::All(_) => Vec::new(),
            };
            let partition = match &up {
                Upstream::Step(s) => s.partition.clone(),
                _ => None,
            };
            let already = !own && self.run.serves(&dep, version);
            if !already {
                let (provider, v) = self
                    .warehouse
                    .provider(&dep, Some(version), &session)
                    .await
                    .map_err(|e| upstream_error(&dep, e))?
                    .ok_or_else(|| StepError::permanent(format!("upstream '{dep}' is recorded as materialized but its Delta table is missing at {}", self.warehouse.table_url(&dep).map(|u| u.to_string()).unwrap_or_default())))?;
                if !partitions.is_empty() || matches!(up, Upstream::All(_)) {
                    // Each partition as published, even where a later version holds it held back.
                    let published: std::collections::HashMap<PartitionKey, i64> = read
                        .iter()
                        .filter_map(|m| m.m.partition_key.clone().map(|p| (p, m.m.delta_version)))
                        .collect();
                    let wanted = (!partitions.is_empty()).then_some(partitions.as_slice());
                    self.register_published(&session, &dep, (provider, v), wanted, &published)
                        .await
                        .map_err(|e| match e {
                            published::ViewError::Warehouse(e) => {
                                InputError::Step(upstream_error(&dep, e))
                            }
                            published::ViewError::DataFusion(e) => InputError::Step(
                                StepError::datafusion("cannot register upstream", &e),
                            ),
                            published::ViewError::Store(e) => InputError::Store(e),
                        })?;
                } else {
                    self.register_input(&session, own, &dep, provider, v)?;
                }
            }
            inputs.push(UpstreamInput {
                key: dep.clone(),
                partition: partition.clone(),
                table_url: self
                    .warehouse
                    .table_url(&dep)
                    .map_err(StepError::permanent)?,
                delta_version: version,
            });
            reads.extend(read.into_iter().map(|m| UpstreamRead {
                key: dep.clone(),
                partition: m.m.partition_key.clone(),
                materialization_id: Some(m.id),
                delta_version: Some(version),
            }));
        }
        Ok((session, inputs, reads))
    }

    /// Makes `dep` (at `version`) readable to the step: in its own session (`own`), or in the run's
    /// shared one, which remembers the version it serves.
    fn register_input(
        &self,
        session: &SessionContext,
        own: bool,
        dep: &AssetKey,
        provider: Arc<dyn datafusion::catalog::TableProvider>,
        version: i64,
    ) -> Result<(), StepError> {
        let registered = if own {
            session
                .register_table(TableReference::bare(dep.as_str()), provider)
                .map(|_| ())
        } else {
            self.run.register(dep, provider, version)
        };
        registered.map_err(|e| StepError::datafusion("cannot register upstream", &e))
    }

    /// An upstream read whole (no partition) at `version` (-1: a source's observation).
    fn whole_input(&self, dep: &AssetKey, version: i64) -> Result<UpstreamInput, StepError> {
        Ok(UpstreamInput {
            key: dep.clone(),
            partition: None,
            table_url: self
                .warehouse
                .table_url(dep)
                .map_err(StepError::permanent)?,
            delta_version: version,
        })
    }

    pub(super) async fn to_stream(
        &self,
        data: StepData,
    ) -> Result<SendableRecordBatchStream, StepError> {
        match data {
            StepData::Stream(s) => Ok(s),
            StepData::Batches(batches) => {
                let Some(first) = batches.first() else {
                    return Err(StepError::permanent("the asset returned no record batches; return at least one (possibly empty) batch so the schema is known"));
                };
                let schema = first.schema();
                if let Some(b) = batches.iter().find(|b| b.schema() != schema) {
                    return Err(StepError::permanent(format!(
                        "record batches disagree on schema: {:?} vs {:?}",
                        schema,
                        b.schema()
                    )));
                }
                let stream = futures::stream::iter(batches.into_iter().map(Ok));
                Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
            }
            StepData::Waiting { .. } => Err(StepError::permanent(
                "internal: a parked step has no data to write",
            )),
            StepData::Files { paths, format } => {
                let ctx = SessionContext::new();
                let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                let ext = |p: &str| {
                    p.rsplit_once('.')
                        .map(|(_, e)| format!(".{e}"))
                        .unwrap_or_default()
                };
                let first_ext = files.first().map(|f| ext(f)).unwrap_or_default();
                let df = match format.as_str() {
                    "parquet" => {
                        ctx.read_parquet(
                            files.clone(),
                            ParquetReadOptions::default().file_extension(&first_ext),
                        )
                        .await
                    }
                    "csv" => {
                        ctx.read_csv(
                            files.clone(),
                            CsvReadOptions::new().file_extension(&first_ext),
                        )
                        .await
                    }
                    "jsonl" => {
                        ctx.read_json(
                            files.clone(),
                            JsonReadOptions::default().file_extension(&first_ext),
                        )
                        .await
                    }
                    other => {
                        return Err(StepError::permanent(format!(
                            "unsupported output format '{other}'"
                        )))
                    }
                }
                .map_err(|e| {
                    StepError::permanent(format!(
                        "output files are not valid {format} ({}): {e}",
                        files.join(", ")
                    ))
                })?;
                df.execute_stream().await.map_err(|e| {
                    StepError::permanent(format!("cannot read output files as {format}: {e}"))
                })
            }
        }
    }
}

/// An Arrow schema as JSON: `[{"name":..,"type":..,"nullable":..}]`.
pub fn schema_json(schema: &arrow::datatypes::Schema) -> serde_json::Value {
    serde_json::Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
            .collect(),
    )
}

/// An upstream that cannot be read: permanent when its table is damaged (a corrupt commit, a
/// missing file; `assets doctor` finds and repairs it), retryable otherwise.
fn upstream_error(dep: &AssetKey, e: crate::error::WarehouseError) -> StepError {
    let message = format!("cannot read upstream '{dep}': {e}");
    if e.is_damage() {
        StepError::permanent(message)
    } else {
        StepError::retryable(message)
    }
}
