//! Spine's steps as Temporal activities (`[executor] kind = "temporal"`): the [`StepQueue`] whose
//! tasks are standalone activities of type `spine.step` on a task queue.
//!
//! Handing a step over starts the activity `spine:RUN:STEP` with its step as JSON input, conflict
//! policy UseExisting (a step handed over again while its activity runs or waits attaches to it) and
//! reuse policy AllowDuplicate (once the activity closed, a new one may start: its worker finds the
//! step's state in the run store and answers at once if it ended). Temporal delivers each activity
//! task to one `assets worker --temporal`, which heartbeats it while the step runs; a worker that
//! goes silent (killed, partitioned) misses its heartbeat timeout and Temporal retries the activity
//! on another worker, which re-claims the step and reconciles it with its table. A worker answers
//! "not yet" (another live worker holds the step) as a retryable failure, so Temporal's retry policy
//! paces the next delivery; a task that can never be done fails non-retryably.

use super::client;
use spine_engine::{QueueError, StepQueue, StepTask, TakenTask, TaskOutcome};
use spine_schemas::definitions::ExecutorSection;
use std::time::Duration;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::common::v1::{ActivityType, Payloads, RetryPolicy};
use temporalio_common::protos::temporal::api::enums::v1::{
    ActivityIdConflictPolicy, ActivityIdReusePolicy, TaskQueueKind,
};
use temporalio_common::protos::temporal::api::failure::v1::{
    failure::FailureInfo, ApplicationFailureInfo, Failure,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    PollActivityTaskQueueRequest, RecordActivityTaskHeartbeatRequest,
    RespondActivityTaskCompletedRequest, RespondActivityTaskFailedRequest,
    StartActivityExecutionRequest,
};

/// The activity type of a Spine step.
pub const ACTIVITY_TYPE: &str = "spine.step";

/// `[executor]` for Temporal, validated.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// The frontend.
    pub url: url::Url,
    /// The namespace.
    pub namespace: String,
    /// The task queue.
    pub task_queue: String,
    /// A worker silent this long loses its task to another.
    pub heartbeat_timeout: Duration,
    /// The longest one step's activity may take, Temporal's retries included.
    pub step_timeout: Duration,
}

impl QueueSettings {
    /// Reads `[executor]`; a message naming the bad field otherwise.
    pub fn from_section(s: &ExecutorSection) -> Result<Self, String> {
        let duration = |field: &str, v: &Option<String>, default: Duration| match v {
            Some(t) => spine_engine::duration::parse_duration(t)
                .map_err(|m| format!("[executor] {field}: {m}")),
            None => Ok(default),
        };
        let heartbeat_timeout = duration(
            "heartbeat_timeout",
            &s.heartbeat_timeout,
            Duration::from_secs(30),
        )?;
        if heartbeat_timeout < Duration::from_secs(1) {
            return Err("[executor] heartbeat_timeout: at least 1s".into());
        }
        let task_queue = s.task_queue.clone().unwrap_or_else(|| "spine".into());
        if task_queue.trim().is_empty() {
            return Err("[executor] task_queue: empty".into());
        }
        Ok(QueueSettings {
            url: super::config::frontend_url(s.address.as_deref())
                .map_err(|m| format!("[executor] address: {m}"))?,
            namespace: s.namespace.clone().unwrap_or_else(|| "default".into()),
            task_queue,
            heartbeat_timeout,
            step_timeout: duration("step_timeout", &s.step_timeout, Duration::from_secs(86_400))?,
        })
    }
}

/// Steps as activities on a Temporal task queue.
pub struct TemporalQueue {
    client: Client,
    settings: QueueSettings,
    identity: String,
}

fn err(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError(format!("{what}: {e}"))
}

impl TemporalQueue {
    /// Connects to the frontend `settings` name.
    pub async fn connect(settings: QueueSettings) -> Result<Self, String> {
        let client = client::connect_to(settings.url.clone(), &settings.namespace).await?;
        Ok(TemporalQueue {
            client,
            identity: format!(
                "spine@{}:{}",
                spine_engine::store::host_name(),
                std::process::id()
            ),
            settings,
        })
    }

    fn task_queue(&self) -> TaskQueue {
        TaskQueue {
            name: self.settings.task_queue.clone(),
            kind: TaskQueueKind::Normal.into(),
            normal_name: String::new(),
        }
    }
}

#[async_trait::async_trait]
impl StepQueue for TemporalQueue {
    fn describe(&self) -> String {
        format!(
            "Temporal {} (namespace {}, task queue {})",
            self.settings.url.authority(),
            self.settings.namespace,
            self.settings.task_queue
        )
    }

    async fn submit(&self, task: &StepTask) -> Result<(), QueueError> {
        let input = serde_json::to_value(task).map_err(|e| err("the task", e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let request = StartActivityExecutionRequest {
            namespace: self.settings.namespace.clone(),
            identity: self.identity.clone(),
            request_id: format!("{}:{nanos}", task.id()),
            activity_id: task.id(),
            activity_type: Some(ActivityType {
                name: ACTIVITY_TYPE.into(),
            }),
            task_queue: Some(self.task_queue()),
            schedule_to_close_timeout: self.settings.step_timeout.try_into().ok(),
            heartbeat_timeout: self.settings.heartbeat_timeout.try_into().ok(),
            retry_policy: Some(RetryPolicy {
                initial_interval: Duration::from_secs(1).try_into().ok(),
                backoff_coefficient: 2.0,
                maximum_interval: Duration::from_secs(30).try_into().ok(),
                // Until the step ends or `step_timeout`: whether to try again is the store's call.
                maximum_attempts: 0,
                non_retryable_error_types: vec![],
            }),
            input: Some(Payloads {
                payloads: vec![client::json_payload(&input)],
            }),
            id_reuse_policy: ActivityIdReusePolicy::AllowDuplicate.into(),
            id_conflict_policy: ActivityIdConflictPolicy::UseExisting.into(),
            ..Default::default()
        };
        WorkflowService::start_activity_execution(&mut self.client.clone(), request.into_request())
            .await
            .map_err(|e| err("cannot start the activity", e.message()))?;
        Ok(())
    }

    async fn take(
        &self,
        cancel: &spine_engine::CancellationToken,
    ) -> Result<Option<TakenTask>, QueueError> {
        let request = PollActivityTaskQueueRequest {
            namespace: self.settings.namespace.clone(),
            task_queue: Some(self.task_queue()),
            identity: self.identity.clone(),
            ..Default::default()
        };
        let mut c = self.client.clone();
        let polled = tokio::select! {
            r = WorkflowService::poll_activity_task_queue(&mut c, request.into_request()) => r,
            _ = cancel.cancelled() => return Ok(None),
        };
        let t = polled
            .map_err(|e| err("cannot poll the task queue", e.message()))?
            .into_inner();
        if t.task_token.is_empty() {
            return Ok(None);
        }
        let payload = t.input.as_ref().and_then(|p| p.payloads.first());
        let parsed = payload
            .ok_or_else(|| "no input".to_string())
            .and_then(client::from_payload)
            .and_then(|v| serde_json::from_value::<StepTask>(v).map_err(|e| e.to_string()));
        match parsed {
            Ok(task) => Ok(Some(TakenTask {
                task,
                token: t.task_token,
                delivery: t.attempt.max(1) as u32,
            })),
            Err(e) => {
                // Not a Spine step (another program's activity on this queue): fail it for good.
                let why = format!("activity {} is not a Spine step: {e}", t.activity_id);
                self.finish(&t.task_token, TaskOutcome::Refused(why.clone()))
                    .await?;
                Err(QueueError(why))
            }
        }
    }

    async fn heartbeat(&self, token: &[u8]) -> Result<(), QueueError> {
        let request = RecordActivityTaskHeartbeatRequest {
            task_token: token.to_vec(),
            namespace: self.settings.namespace.clone(),
            identity: self.identity.clone(),
            ..Default::default()
        };
        WorkflowService::record_activity_task_heartbeat(
            &mut self.client.clone(),
            request.into_request(),
        )
        .await
        .map_err(|e| err("heartbeat", e.message()))?;
        Ok(())
    }

    async fn finish(&self, token: &[u8], outcome: TaskOutcome) -> Result<(), QueueError> {
        let mut c = self.client.clone();
        let (message, non_retryable) = match outcome {
            TaskOutcome::Ended(status) => {
                let result = serde_json::json!({ "status": status.to_string() });
                let request = RespondActivityTaskCompletedRequest {
                    task_token: token.to_vec(),
                    result: Some(Payloads {
                        payloads: vec![client::json_payload(&result)],
                    }),
                    identity: self.identity.clone(),
                    namespace: self.settings.namespace.clone(),
                    ..Default::default()
                };
                WorkflowService::respond_activity_task_completed(&mut c, request.into_request())
                    .await
                    .map_err(|e| err("cannot complete the activity", e.message()))?;
                return Ok(());
            }
            TaskOutcome::Retry(m) => (m, false),
            TaskOutcome::Refused(m) => (m, true),
        };
        let request = RespondActivityTaskFailedRequest {
            task_token: token.to_vec(),
            failure: Some(Failure {
                message,
                source: "spine".into(),
                failure_info: Some(FailureInfo::ApplicationFailureInfo(
                    ApplicationFailureInfo {
                        r#type: "SpineStep".into(),
                        non_retryable,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            identity: self.identity.clone(),
            namespace: self.settings.namespace.clone(),
            ..Default::default()
        };
        WorkflowService::respond_activity_task_failed(&mut c, request.into_request())
            .await
            .map_err(|e| err("cannot fail the activity", e.message()))?;
        Ok(())
    }

    fn heartbeat_every(&self) -> Duration {
        (self.settings.heartbeat_timeout / 3).max(Duration::from_millis(300))
    }
}
