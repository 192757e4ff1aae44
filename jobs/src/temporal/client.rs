//! The Temporal side of the `temporal` kind (cargo feature `temporal`): start a workflow or attach to
//! the one already started for the same work, tell whether it ended, read its result. Payloads are
//! JSON (`json/plain`), which every Temporal SDK reads and writes by default.

use super::config::TemporalConfig;
use serde_json::Value;
use std::collections::HashMap;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, UntypedWorkflow, WorkflowDescribeOptions,
    WorkflowExecutionStatus, WorkflowGetResultOptions, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// Where a workflow stands.
pub enum State {
    /// Still running.
    Running,
    /// Completed with this result.
    Completed(Value),
    /// Ended without a result (failed, cancelled, terminated, timed out): why.
    Ended(String),
}

/// A connected client.
pub async fn connect(c: &TemporalConfig) -> Result<Client, String> {
    connect_to(c.url()?, &c.namespace).await
}

/// A client of `namespace` on the frontend at `url`.
pub async fn connect_to(url: url::Url, namespace: &str) -> Result<Client, String> {
    let host = url.host_str().unwrap_or_default().to_string();
    let opts = ConnectionOptions::new(url)
        .identity(format!("spine@{}", spine_engine::store::host_name()))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build();
    let conn = Connection::connect(opts)
        .await
        .map_err(|e| format!("cannot reach Temporal at {host}: {e}"))?;
    Client::new(conn, ClientOptions::new(namespace.to_string()).build())
        .map_err(|e| format!("Temporal client: {e}"))
}

pub(super) fn json_payload(v: &Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(v).unwrap_or_default(),
        ..Default::default()
    }
}

/// The value of a JSON payload (null for a payload without data).
pub(super) fn from_payload(p: &Payload) -> Result<Value, String> {
    if p.data.is_empty() {
        return Ok(Value::Null);
    }
    let encoding = p
        .metadata
        .get("encoding")
        .map(|e| String::from_utf8_lossy(e).to_string())
        .unwrap_or_default();
    serde_json::from_slice(&p.data)
        .map_err(|e| format!("the workflow's result is not JSON (encoding '{encoding}'): {e}"))
}

/// Starts the workflow `id` with `input`, or attaches to it: a running one is used as it is
/// (conflict policy UseExisting), a completed one is never started again (reuse policy
/// AllowDuplicateFailedOnly: only one that failed, was cancelled, terminated or timed out is run
/// again; starting a completed one is refused, and [`state`] reads its result).
pub async fn start(
    client: &Client,
    c: &TemporalConfig,
    id: &str,
    input: Option<&Value>,
) -> Result<(), String> {
    let mut opts = WorkflowStartOptions::new(c.task_queue.clone(), id.to_string())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    opts.execution_timeout = c.execution_timeout;
    let args = RawValue::new(input.map(json_payload).into_iter().collect());
    match client
        .start_workflow(UntypedWorkflow::new(c.workflow.clone()), args, opts)
        .await
    {
        Ok(_) | Err(temporalio_client::errors::WorkflowStartError::AlreadyStarted { .. }) => Ok(()),
        Err(e) => Err(format!("starting workflow '{id}': {e}")),
    }
}

/// Where workflow `id` stands (its latest run: a failed one started again is the new run) and
/// that run's id.
pub async fn state(client: &Client, id: &str) -> Result<(State, String), String> {
    let h = client.get_workflow_handle::<UntypedWorkflow>(id.to_string());
    let d = h
        .describe(WorkflowDescribeOptions::default())
        .await
        .map_err(|e| format!("describing workflow '{id}': {e}"))?;
    let run_id = d.run_id().to_string();
    let state = match d.status() {
        WorkflowExecutionStatus::Running | WorkflowExecutionStatus::Paused => State::Running,
        WorkflowExecutionStatus::Completed => {
            let raw = h
                .get_result(WorkflowGetResultOptions::default())
                .await
                .map_err(|e| format!("the result of workflow '{id}': {e}"))?;
            let value = match raw.payloads.first() {
                Some(p) => from_payload(p)?,
                None => Value::Null,
            };
            State::Completed(value)
        }
        other => State::Ended(format!("workflow '{id}' (run {run_id}) ended {other:?}")),
    };
    Ok((state, run_id))
}

/// Sends the signal `name` with `payload` (none: no argument) to workflow `id`.
pub async fn signal(
    client: &Client,
    id: &str,
    name: &str,
    payload: Option<&Value>,
) -> Result<(), String> {
    let h = client.get_workflow_handle::<UntypedWorkflow>(id.to_string());
    let args = RawValue::new(payload.map(json_payload).into_iter().collect());
    h.signal(
        temporalio_client::UntypedSignal::<UntypedWorkflow>::new(name),
        args,
        temporalio_client::WorkflowSignalOptions::default(),
    )
    .await
    .map_err(|e| format!("signalling workflow '{id}': {e}"))
}

/// Asks workflow `id` the query `name` with `payload`; its answer.
pub async fn query(
    client: &Client,
    id: &str,
    name: &str,
    payload: Option<&Value>,
) -> Result<Value, String> {
    let h = client.get_workflow_handle::<UntypedWorkflow>(id.to_string());
    let args = RawValue::new(payload.map(json_payload).into_iter().collect());
    let out = h
        .query(
            temporalio_client::UntypedQuery::<UntypedWorkflow>::new(name),
            args,
            temporalio_client::WorkflowQueryOptions::default(),
        )
        .await
        .map_err(|e| format!("querying workflow '{id}': {e}"))?;
    match out.payloads.first() {
        Some(p) => from_payload(p),
        None => Ok(Value::Null),
    }
}
