//! What a step reads and returns: its upstreams registered in the run's session at the recorded
//! versions, and the data a kind produced (batches, a stream, or files) decoded into one stream.

use super::*;

impl Engine {
    /// Registers each upstream step key of `step` in the run's session at its latest recorded
    /// version (the table under the asset's key).
    pub(super) async fn register_upstreams(
        &self,
        state: &RunState,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
    ) -> Result<(Vec<UpstreamInput>, Vec<UpstreamRead>), StepError> {
        let mut inputs = Vec::new();
        let mut reads = Vec::new();
        for up in crate::plan::upstream_steps(spec, step) {
            let dep = &up.asset;
            let latest = state.latest.lock().expect("latest lock").get(&up).cloned();
            let Some(m) = latest else {
                return Err(StepError::permanent(format!(
                    "upstream '{dep}' has never been materialized; include it in the selection (e.g. '+{}')",
                    spec.key
                )));
            };
            let version = m.m.delta_version;
            let already =
                state.registered.lock().expect("registered lock").get(dep) == Some(&version);
            if !already {
                let (provider, v) = self
                    .warehouse
                    .provider(dep, Some(version), &state.session)
                    .await
                    .map_err(|e| StepError::retryable(format!("cannot read upstream '{dep}': {e}")))?
                    .ok_or_else(|| StepError::permanent(format!("upstream '{dep}' is recorded as materialized but its Delta table is missing at {}", self.warehouse.table_url(dep).map(|u| u.to_string()).unwrap_or_default())))?;
                state
                    .register(dep, provider, v)
                    .map_err(|e| StepError::datafusion("cannot register upstream", &e))?;
            }
            inputs.push(UpstreamInput {
                key: dep.clone(),
                partition: up.partition.clone(),
                table_url: self
                    .warehouse
                    .table_url(dep)
                    .map_err(StepError::permanent)?,
                delta_version: version,
            });
            reads.push(UpstreamRead {
                key: dep.clone(),
                partition: up.partition.clone(),
                materialization_id: Some(m.id),
                delta_version: Some(version),
            });
        }
        Ok((inputs, reads))
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
