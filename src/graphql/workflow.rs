//! Workflows in GraphQL: the workflow, its versions, the nodes and connections of a version,
//! and the mutations that make new versions.

use async_graphql::{Context, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::execution::{ExecutionFilter, ExecutionRecordObject, executions_of};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::tenancy::{UserProfileObject, WorkspaceObject};
use crate::db::models::{Connection as ConnectionRow, Node, Workflow, WorkflowVersion};
use crate::error::AppError;
use crate::workflow::graph::{Graph, GraphConnection, GraphNode, NodeType, Position};
use crate::workflow::service::{self, NewWorkflow, Source};

pub struct WorkflowObject(pub Workflow);

#[Object(name = "Workflow")]
impl WorkflowObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    /// SCRATCH, TEMPLATE or WORKFLOW.
    async fn source_type(&self) -> &str {
        &self.0.source_type
    }
    async fn source_template_id(&self) -> Option<Uuid> {
        self.0.source_template_id
    }
    async fn source_workflow_id(&self) -> Option<Uuid> {
        self.0.source_workflow_id
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<WorkspaceObject> {
        let found = ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?;
        Ok(WorkspaceObject(
            found.ok_or(AppError::NotFound("workspace"))?,
        ))
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    /// The version that runs.
    async fn current_version(&self, ctx: &Context<'_>) -> Result<WorkflowVersionObject> {
        let found = ctx.loader()?.load_one(CurrentVersionOf(self.0.id)).await?;
        Ok(WorkflowVersionObject(
            found.ok_or(AppError::NotFound("workflow version"))?,
        ))
    }
    /// What applications, API keys and end users run; null while the workflow has never
    /// been published (they run the current version then).
    async fn published_version(&self, ctx: &Context<'_>) -> Result<Option<WorkflowVersionObject>> {
        let Some(id) = self.0.published_version_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(VersionById(id))
            .await?
            .map(WorkflowVersionObject))
    }
    /// Its runs, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ExecutionFilter>,
    ) -> Result<Conn<ExecutionRecordObject>> {
        executions_of(
            ctx,
            ListName::WorkflowExecutions,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// Every version, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<WorkflowVersionObject>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        child_page(
            ctx,
            ListName::WorkflowVersions,
            self.0.id,
            page,
            ListFilter::default(),
            WorkflowVersionObject,
        )
        .await
    }
}

/// One immutable version of a workflow's graph.
pub struct WorkflowVersionObject(pub WorkflowVersion);

#[Object(name = "WorkflowVersion")]
impl WorkflowVersionObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// 1, 2, 3... per workflow.
    async fn sequence_number(&self) -> i32 {
        self.0.sequence_number
    }
    async fn is_current(&self) -> bool {
        self.0.is_current
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The graph as saved: `{ nodes, connections }`.
    async fn graph(&self) -> Json<Value> {
        Json(self.0.graph.clone())
    }
    /// The version this one was made from.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<WorkflowVersionObject>> {
        let Some(id) = self.0.parent_version_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(VersionById(id))
            .await?
            .map(WorkflowVersionObject))
    }
    async fn workflow(&self, ctx: &Context<'_>) -> Result<Option<WorkflowObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkflowById(self.0.workflow_id))
            .await?
            .map(WorkflowObject))
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<GraphNodeObject>> {
        let found = ctx.loader()?.load_one(NodesOfVersion(self.0.id)).await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(GraphNodeObject)
            .collect())
    }
    async fn connections(&self, ctx: &Context<'_>) -> Result<Vec<GraphConnectionObject>> {
        let found = ctx
            .loader()?
            .load_one(ConnectionsOfVersion(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(GraphConnectionObject)
            .collect())
    }
}

/// A node of a workflow version.
pub struct GraphNodeObject(pub Node);

#[Object(name = "GraphNode")]
impl GraphNodeObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn key(&self) -> &str {
        &self.0.node_key
    }
    #[graphql(name = "type")]
    async fn node_type(&self) -> Result<NodeType> {
        Ok(NodeType::parse(&self.0.node_type).ok_or_else(|| {
            AppError::internal(format!("unknown node type {:?}", self.0.node_type))
        })?)
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    async fn config(&self) -> Json<Value> {
        Json(self.0.config.clone())
    }
    async fn position_x(&self) -> Option<f64> {
        self.0.position_x
    }
    async fn position_y(&self) -> Option<f64> {
        self.0.position_y
    }
}

/// An edge of a workflow version: `source` runs before `target`.
pub struct GraphConnectionObject(pub ConnectionRow);

#[Object(name = "GraphConnection")]
impl GraphConnectionObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn source(&self) -> &str {
        &self.0.source_node_key
    }
    async fn target(&self) -> &str {
        &self.0.target_node_key
    }
    /// "true" or "false" for the branches of a CONDITION.
    async fn source_handle(&self) -> Option<&str> {
        self.0.source_handle.as_deref()
    }
}

#[derive(InputObject)]
pub struct PositionInput {
    x: f64,
    y: f64,
}

#[derive(InputObject)]
pub struct NodeInput {
    key: String,
    #[graphql(name = "type")]
    node_type: NodeType,
    title: Option<String>,
    config: Json<Value>,
    position: Option<PositionInput>,
}

#[derive(InputObject)]
pub struct ConnectionInput {
    source: String,
    target: String,
    source_handle: Option<String>,
}

#[derive(InputObject)]
pub struct WorkflowGraphInput {
    nodes: Vec<NodeInput>,
    connections: Vec<ConnectionInput>,
}

impl From<WorkflowGraphInput> for Graph {
    fn from(input: WorkflowGraphInput) -> Graph {
        Graph {
            nodes: input
                .nodes
                .into_iter()
                .map(|n| GraphNode {
                    key: n.key,
                    node_type: n.node_type,
                    title: n.title,
                    config: n.config.0,
                    position: n.position.map(|p| Position { x: p.x, y: p.y }),
                })
                .collect(),
            connections: input
                .connections
                .into_iter()
                .map(|c| GraphConnection {
                    source: c.source,
                    target: c.target,
                    source_handle: c.source_handle,
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct CreateWorkflowInput {
    workspace_id: Uuid,
    name: String,
    description: Option<String>,
    /// The first version's graph; a lone START node when omitted.
    graph: Option<WorkflowGraphInput>,
}

#[derive(InputObject)]
pub struct UpdateWorkflowGraphInput {
    workflow_id: Uuid,
    graph: WorkflowGraphInput,
}

#[derive(InputObject)]
pub struct RevertWorkflowInput {
    workflow_id: Uuid,
    sequence_number: i32,
}

#[derive(InputObject)]
pub struct PublishWorkflowInput {
    workflow_id: Uuid,
    /// The version to publish; omitted: the current version.
    sequence_number: Option<i32>,
}

#[derive(InputObject)]
pub struct RenameWorkflowInput {
    workflow_id: Uuid,
    name: String,
    description: Option<String>,
}

#[derive(InputObject, Default)]
pub struct WorkflowFilter {
    name_contains: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

impl From<Option<WorkflowFilter>> for ListFilter {
    fn from(filter: Option<WorkflowFilter>) -> ListFilter {
        let f = filter.unwrap_or_default();
        ListFilter {
            name_contains: f.name_contains,
            status: None,
            created_after: f.created_after,
            created_before: f.created_before,
            application_id: None,
            ..ListFilter::default()
        }
    }
}

/// `Workspace.workflows`, newest first.
pub async fn workspace_workflows(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<WorkflowFilter>,
) -> Result<Conn<WorkflowObject>> {
    child_page(
        ctx,
        ListName::WorkspaceWorkflows,
        workspace_id,
        args.page()?,
        ListFilter::from(filter),
        WorkflowObject,
    )
    .await
}

#[derive(Default)]
pub struct WorkflowQuery;

#[Object]
impl WorkflowQuery {
    /// A workflow the caller can see, or null.
    async fn workflow(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<WorkflowObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(WorkflowById(id))
            .await?
            .map(WorkflowObject))
    }
}

#[derive(Default)]
pub struct WorkflowMutation;

#[Object]
impl WorkflowMutation {
    /// Creates a workflow with its first version (EDITOR and up).
    async fn create_workflow(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkflowInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let new = NewWorkflow {
            workspace_id: input.workspace_id,
            name: input.name,
            description: input.description,
            graph: input
                .graph
                .map(Graph::from)
                .unwrap_or_else(service::empty_graph),
            source: Source::Scratch,
        };
        Ok(WorkflowObject(
            service::create_workflow(&mut conn, actor, &ctx.client(), new).await?,
        ))
    }

    /// Copies a workflow (its current graph as the copy's first version) in its workspace;
    /// the copy's `sourceWorkflowId` names the original. EDITOR and up.
    async fn duplicate_workflow(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(desc = "The copy's name (default: the original's with \" (copy)\").")]
        name: Option<String>,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        Ok(WorkflowObject(
            service::duplicate_workflow(&mut conn, actor, &ctx.client(), id, name.as_deref())
                .await?,
        ))
    }

    /// Saves a graph as a new current version.
    async fn update_workflow_graph(
        &self,
        ctx: &Context<'_>,
        input: UpdateWorkflowGraphInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workflow = service::update_graph(
            &mut conn,
            actor,
            &ctx.client(),
            input.workflow_id,
            input.graph.into(),
        )
        .await?;
        Ok(WorkflowObject(workflow))
    }

    /// Makes an earlier version's graph the new current version.
    async fn revert_workflow(
        &self,
        ctx: &Context<'_>,
        input: RevertWorkflowInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workflow = service::revert(
            &mut conn,
            actor,
            &ctx.client(),
            input.workflow_id,
            input.sequence_number,
        )
        .await?;
        Ok(WorkflowObject(workflow))
    }

    /// Makes a version (the current one unless told) what applications, API keys and end
    /// users run; the draft stays as it is.
    async fn publish_workflow(
        &self,
        ctx: &Context<'_>,
        input: PublishWorkflowInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workflow = crate::workflow::publishing::publish(
            &mut conn,
            actor,
            &ctx.client(),
            input.workflow_id,
            input.sequence_number,
        )
        .await?;
        Ok(WorkflowObject(workflow))
    }

    /// Renames a workflow.
    async fn rename_workflow(
        &self,
        ctx: &Context<'_>,
        input: RenameWorkflowInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workflow = service::rename(
            &mut conn,
            actor,
            &ctx.client(),
            input.workflow_id,
            &input.name,
            input.description.as_deref(),
        )
        .await?;
        Ok(WorkflowObject(workflow))
    }

    /// Deletes a workflow (it can no longer be seen or run).
    async fn delete_workflow(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        service::delete(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
