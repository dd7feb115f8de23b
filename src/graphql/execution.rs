//! Workflow runs in GraphQL: `ExecutionRecord`, `execution(id:)`, run histories, and the
//! events of a run's stream (`ExecutionEvent`).

use std::sync::Arc;

use async_graphql::{Context, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::application::ApplicationObject;
use super::context::ContextExt;
use super::conversation::MessageObject;
use super::enums::{ExecutionStatus, parse};
use super::lists::{ListFilter, ListName};
use super::loaders::{
    ApplicationById, ExecutionRecordById, MessageOfExecution, NodeResultsOfExecution,
    UserProfileById, VersionById, WorkflowById,
};
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::tenancy::UserProfileObject;
use super::workflow::{WorkflowObject, WorkflowVersionObject};
use crate::db::models::{ExecutionRecord, NodeExecutionResult};
use crate::realtime::events::{Event, ExecutionEvent, ExecutionEventKind};
use crate::workflow::NodeType;

/// Which runs a run history shows.
#[derive(InputObject, Default)]
pub struct ExecutionFilter {
    /// Runs in any of these states (omitted or empty: any).
    status: Option<Vec<ExecutionStatus>>,
    workflow_id: Option<Uuid>,
    /// Runs an application started (its API key or end users).
    application_id: Option<Uuid>,
    /// Runs created at or after this time.
    since: Option<DateTime<Utc>>,
    /// Runs created before this time.
    until: Option<DateTime<Utc>>,
}

impl From<Option<ExecutionFilter>> for ListFilter {
    fn from(filter: Option<ExecutionFilter>) -> ListFilter {
        let f = filter.unwrap_or_default();
        ListFilter {
            statuses: f
                .status
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            workflow_id: f.workflow_id,
            application_id: f.application_id,
            // `created_after` is exclusive: one microsecond earlier makes `since` inclusive.
            created_after: f.since.map(|t| t - chrono::Duration::microseconds(1)),
            created_before: f.until,
            ..ListFilter::default()
        }
    }
}

/// A run history (`Workspace.executions`, `Workflow.executions`): newest first.
pub async fn executions_of(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    args: PageArgs,
    filter: Option<ExecutionFilter>,
) -> Result<Conn<ExecutionRecordObject>> {
    child_page(
        ctx,
        list,
        parent,
        args.page()?,
        ListFilter::from(filter),
        ExecutionRecordObject,
    )
    .await
}

/// A run of a workflow version.
pub struct ExecutionRecordObject(pub ExecutionRecord);

#[Object(name = "ExecutionRecord")]
impl ExecutionRecordObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn workspace_id(&self) -> Uuid {
        self.0.workspace_id
    }
    async fn workflow_id(&self) -> Uuid {
        self.0.workflow_id
    }
    /// The version of the workflow's graph that ran.
    async fn version_id(&self) -> Uuid {
        self.0.version_id
    }
    async fn status(&self) -> Result<ExecutionStatus> {
        Ok(parse(&self.0.status)?)
    }
    async fn inputs(&self) -> Json<Value> {
        Json(self.0.inputs.clone())
    }
    async fn outputs(&self) -> Option<Json<Value>> {
        self.0.outputs.clone().map(Json)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn elapsed_ms(&self) -> Option<i64> {
        self.0.elapsed_ms
    }
    async fn total_tokens(&self) -> i32 {
        self.0.total_tokens
    }
    /// Nodes finished so far (kept as the run advances).
    async fn total_steps(&self) -> i32 {
        self.0.total_steps
    }
    /// The node the run is at: the last one started that is still running (null when the
    /// run is queued or has ended). `workspaceExecutions` sends each change of it.
    async fn current_node_key(&self) -> Option<&str> {
        self.0.current_node_key.as_deref()
    }
    async fn current_node_type(&self) -> Option<NodeType> {
        self.0
            .current_node_type
            .as_deref()
            .and_then(NodeType::parse)
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn workflow(&self, ctx: &Context<'_>) -> Result<Option<WorkflowObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkflowById(self.0.workflow_id))
            .await?
            .map(WorkflowObject))
    }
    /// The version of the workflow that ran.
    async fn workflow_version(&self, ctx: &Context<'_>) -> Result<Option<WorkflowVersionObject>> {
        Ok(ctx
            .loader()?
            .load_one(VersionById(self.0.version_id))
            .await?
            .map(WorkflowVersionObject))
    }
    /// The builder who started it (null when an application's API key or end user did).
    async fn triggered_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.triggered_by_user_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    /// The application it ran for, when an application started it.
    async fn application(&self, ctx: &Context<'_>) -> Result<Option<ApplicationObject>> {
        let Some(id) = self.0.triggered_by_application_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(ApplicationById(id))
            .await?
            .map(ApplicationObject))
    }
    /// The reply it produced, for a chat run.
    async fn message(&self, ctx: &Context<'_>) -> Result<Option<MessageObject>> {
        Ok(ctx
            .loader()?
            .load_one(MessageOfExecution(self.0.id))
            .await?
            .map(MessageObject::of))
    }
    /// The result of each node that started or was skipped, in that order.
    async fn node_results(&self, ctx: &Context<'_>) -> Result<Vec<NodeExecutionResultObject>> {
        Ok(ctx
            .loader()?
            .load_one(NodeResultsOfExecution(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(NodeExecutionResultObject)
            .collect())
    }
}

/// What one node of a run did.
pub struct NodeExecutionResultObject(pub NodeExecutionResult);

#[Object(name = "NodeExecutionResult")]
impl NodeExecutionResultObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn node_key(&self) -> &str {
        &self.0.node_key
    }
    async fn node_type(&self) -> Option<NodeType> {
        NodeType::parse(&self.0.node_type)
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn status(&self) -> Result<ExecutionStatus> {
        Ok(parse(&self.0.status)?)
    }
    async fn inputs(&self) -> Option<Json<Value>> {
        self.0.inputs.clone().map(Json)
    }
    async fn outputs(&self) -> Option<Json<Value>> {
        self.0.outputs.clone().map(Json)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// What a CODE node's code wrote to its console, a line a call (null for other nodes).
    async fn console(&self) -> Option<Vec<String>> {
        let lines = self.0.console.as_ref()?.as_array()?;
        Some(
            lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect(),
        )
    }
    async fn elapsed_ms(&self) -> Option<i64> {
        self.0.elapsed_ms
    }
    async fn total_tokens(&self) -> i32 {
        self.0.total_tokens
    }
    /// 0, 1, 2, ... in the order the nodes started (or were skipped).
    async fn sequence_index(&self) -> i32 {
        self.0.sequence_index
    }
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// An event of a run's stream; shares the event every subscriber of this process got.
pub struct ExecutionEventObject(pub Arc<Event>);

impl ExecutionEventObject {
    fn event(&self) -> Result<&ExecutionEvent> {
        match &*self.0 {
            Event::Execution(e) => Ok(e),
            _ => Err("not an execution event".into()),
        }
    }
}

#[Object(name = "ExecutionEvent")]
impl ExecutionEventObject {
    /// 1, 2, 3, ... per execution, gapless.
    async fn seq(&self) -> Result<i32> {
        Ok(i32::try_from(self.event()?.seq).unwrap_or(i32::MAX))
    }
    async fn kind(&self) -> Result<ExecutionEventKind> {
        Ok(self.event()?.kind)
    }
    /// The run as it stood when the event was published.
    async fn execution(&self) -> Result<ExecutionRecordObject> {
        Ok(ExecutionRecordObject((*self.event()?.execution).clone()))
    }
    async fn node_key(&self) -> Result<Option<&str>> {
        Ok(self.event()?.node_key.as_deref())
    }
    async fn node_type(&self) -> Result<Option<NodeType>> {
        Ok(self.event()?.node_type)
    }
    /// The node's status for node events, the run's otherwise.
    async fn status(&self) -> Result<ExecutionStatus> {
        Ok(parse(&self.event()?.status)?)
    }
    async fn inputs(&self) -> Result<Option<Json<Value>>> {
        Ok(self.event()?.inputs.clone().map(Json))
    }
    async fn outputs(&self) -> Result<Option<Json<Value>>> {
        Ok(self.event()?.outputs.clone().map(Json))
    }
    async fn error(&self) -> Result<Option<&str>> {
        Ok(self.event()?.error.as_deref())
    }
    async fn elapsed_ms(&self) -> Result<Option<i64>> {
        Ok(self.event()?.elapsed_ms)
    }
    async fn total_tokens(&self) -> Result<Option<i32>> {
        Ok(self.event()?.total_tokens)
    }
    async fn at(&self) -> Result<DateTime<Utc>> {
        Ok(self.event()?.at)
    }
}

#[derive(Default)]
pub struct ExecutionQuery;

#[Object]
impl ExecutionQuery {
    /// A workflow run the caller can see, or null.
    async fn execution(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<Option<ExecutionRecordObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(ExecutionRecordById(id))
            .await?
            .map(ExecutionRecordObject))
    }
}

#[derive(InputObject)]
pub struct RunWorkflowInput {
    workflow_id: Uuid,
    /// Values of the START node's inputs.
    inputs: Option<Json<Value>>,
    /// The version to run, by sequence number (builders only); omitted: builders run the
    /// current version (the draft), an application's API key the published one.
    version: Option<i32>,
}

#[derive(Default)]
pub struct ExecutionMutation;

#[Object]
impl ExecutionMutation {
    /// Runs a workflow (RUN in its workspace: the draft or `version`; or the API key of an
    /// application serving it: the published version). Returns at once, QUEUED; follow it with `executionEvents`.
    async fn run_workflow(
        &self,
        ctx: &Context<'_>,
        input: RunWorkflowInput,
    ) -> Result<ExecutionRecordObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let execution = crate::workflow::run::run_workflow(
            app,
            actor,
            &ctx.client(),
            input.workflow_id,
            input.inputs.map(|j| j.0),
            input.version,
        )
        .await?;
        Ok(ExecutionRecordObject(execution))
    }

    /// Stops a run wherever it runs, including a model's reply in flight; returns the run
    /// once it has stopped (STOPPED), or as it already ended.
    async fn stop_execution(&self, ctx: &Context<'_>, id: Uuid) -> Result<ExecutionRecordObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let execution = crate::workflow::run::stop_execution(app, actor, &ctx.client(), id).await?;
        Ok(ExecutionRecordObject(execution))
    }
}
