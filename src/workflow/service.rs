//! Creating workflows and their versions. Every change of the graph is a new immutable
//! version (numbered, with its parent) that becomes the current one.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::graph::Graph;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Workflow, WorkflowVersion};
use crate::db::schema::{connections, nodes, workflow_versions, workflows};
use crate::error::{AppError, AppResult};
use crate::validate;

/// Where a new workflow comes from.
pub enum Source {
    Scratch,
    Template(Uuid),
    Workflow(Uuid),
}

pub struct NewWorkflow {
    pub workspace_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub graph: Graph,
    pub source: Source,
}

/// The graph a workflow starts with when none is given: a START node.
pub fn empty_graph() -> Graph {
    serde_json::from_value(json!({
        "nodes": [{ "key": "start", "type": "START", "config": { "inputs": [] } }],
        "connections": []
    }))
    .unwrap_or(Graph {
        nodes: Vec::new(),
        connections: Vec::new(),
    })
}

fn graph_json(graph: &Graph) -> AppResult<serde_json::Value> {
    serde_json::to_value(graph).map_err(AppError::internal)
}

/// Stores a graph as a new current version of a workflow (inside the caller's transaction).
async fn insert_version(
    conn: &mut AsyncPgConnection,
    workflow: &Workflow,
    graph: &Graph,
    actor: Actor,
) -> AppResult<WorkflowVersion> {
    crate::tools::check_graph(conn, workflow.workspace_id, graph).await?;
    let current: Option<(Uuid, i32)> = workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(workflow.id))
        .filter(workflow_versions::is_current.eq(true))
        .select((workflow_versions::id, workflow_versions::sequence_number))
        .first(conn)
        .await
        .optional()?;
    let last: Option<i32> = workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(workflow.id))
        .select(diesel::dsl::max(workflow_versions::sequence_number))
        .first(conn)
        .await?;
    if let Some((id, _)) = current {
        diesel::update(workflow_versions::table.find(id))
            .set(workflow_versions::is_current.eq(false))
            .execute(conn)
            .await?;
    }
    let version: WorkflowVersion = diesel::insert_into(workflow_versions::table)
        .values((
            workflow_versions::workspace_id.eq(workflow.workspace_id),
            workflow_versions::workflow_id.eq(workflow.id),
            workflow_versions::sequence_number.eq(last.unwrap_or(0) + 1),
            workflow_versions::parent_version_id.eq(current.map(|c| c.0)),
            workflow_versions::is_current.eq(true),
            workflow_versions::graph.eq(graph_json(graph)?),
            workflow_versions::created_by.eq(actor.user_id().ok()),
        ))
        .returning(WorkflowVersion::as_returning())
        .get_result(conn)
        .await?;
    let node_rows: Vec<_> = graph
        .nodes
        .iter()
        .map(|n| {
            (
                nodes::workspace_id.eq(workflow.workspace_id),
                nodes::version_id.eq(version.id),
                nodes::node_key.eq(n.key.clone()),
                nodes::node_type.eq(n.node_type.as_str()),
                nodes::title.eq(n.title.clone()),
                nodes::config.eq(n.config.clone()),
                nodes::position_x.eq(n.position.as_ref().map(|p| p.x)),
                nodes::position_y.eq(n.position.as_ref().map(|p| p.y)),
            )
        })
        .collect();
    diesel::insert_into(nodes::table)
        .values(node_rows)
        .execute(conn)
        .await?;
    let connection_rows: Vec<_> = graph
        .connections
        .iter()
        .map(|c| {
            (
                connections::workspace_id.eq(workflow.workspace_id),
                connections::version_id.eq(version.id),
                connections::source_node_key.eq(c.source.clone()),
                connections::target_node_key.eq(c.target.clone()),
                connections::source_handle.eq(c.source_handle.clone()),
            )
        })
        .collect();
    if !connection_rows.is_empty() {
        diesel::insert_into(connections::table)
            .values(connection_rows)
            .execute(conn)
            .await?;
    }
    diesel::update(workflows::table.find(workflow.id))
        .set(workflows::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(version)
}

/// Creates a workflow with its first version.
pub async fn create_workflow(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    input: NewWorkflow,
) -> AppResult<Workflow> {
    let name = validate::name("name", &input.name, 255)?;
    let description = input
        .description
        .as_deref()
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    input.graph.validate()?;
    let (source_type, template_id, workflow_id) = match input.source {
        Source::Scratch => ("SCRATCH", None, None),
        Source::Template(id) => ("TEMPLATE", Some(id), None),
        Source::Workflow(id) => ("WORKFLOW", None, Some(id)),
    };
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, input.workspace_id, Action::Build).await?;
        let workflow: Workflow = diesel::insert_into(workflows::table)
            .values((
                workflows::workspace_id.eq(input.workspace_id),
                workflows::name.eq(&name),
                workflows::description.eq(&description),
                workflows::source_type.eq(source_type),
                workflows::source_template_id.eq(template_id),
                workflows::source_workflow_id.eq(workflow_id),
                workflows::created_by.eq(actor.user_id().ok()),
            ))
            .returning(Workflow::as_returning())
            .get_result(conn)
            .await?;
        let version = insert_version(conn, &workflow, &input.graph, actor).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.create",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({ "name": name, "versionId": version.id, "sourceType": source_type }),
            },
        )
        .await?;
        Ok(workflow)
    })
    .await
}

/// A workflow the actor may build in, locked for the rest of the transaction.
pub(super) async fn workflow_for_building(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workflow_id: Uuid,
) -> AppResult<Workflow> {
    let user_id = actor.user_id()?;
    let workflow: Workflow = workflows::table
        .find(workflow_id)
        .filter(workflows::deleted_at.is_null())
        .filter(workflows::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(Workflow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("workflow"))?;
    authorize_workspace(conn, actor, workflow.workspace_id, Action::Build).await?;
    Ok(workflow)
}

/// Copies a workflow into its own workspace: a new workflow (SOURCE WORKFLOW, the original
/// recorded as `source_workflow_id`) whose first version is the original's current graph.
/// EDITOR and up; `name` defaults to the original's with " (copy)".
pub async fn duplicate_workflow(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    name: Option<&str>,
) -> AppResult<Workflow> {
    let original = {
        let user_id = actor.user_id()?;
        workflows::table
            .find(workflow_id)
            .filter(workflows::deleted_at.is_null())
            .filter(workflows::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .select(Workflow::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("workflow"))?
    };
    let graph: serde_json::Value = workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(original.id))
        .filter(workflow_versions::is_current.eq(true))
        .select(workflow_versions::graph)
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("workflow version"))?;
    let graph: Graph = serde_json::from_value(graph)
        .map_err(|e| AppError::internal(format!("a stored graph does not parse: {e}")))?;
    let name = match name {
        Some(name) => name.to_string(),
        None => crate::validate::truncate(&format!("{} (copy)", original.name), 255),
    };
    create_workflow(
        conn,
        actor,
        client,
        NewWorkflow {
            workspace_id: original.workspace_id,
            name,
            description: original.description.clone(),
            graph,
            source: Source::Workflow(original.id),
        },
    )
    .await
}

/// Saves a graph as the new current version.
pub async fn update_graph(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    graph: Graph,
) -> AppResult<Workflow> {
    graph.validate()?;
    conn.transaction(async |conn| {
        let workflow = workflow_for_building(conn, actor, workflow_id).await?;
        let version = insert_version(conn, &workflow, &graph, actor).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.update_graph",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({ "versionId": version.id, "sequenceNumber": version.sequence_number }),
            },
        )
        .await?;
        Ok(workflow)
    })
    .await
}

/// Makes an earlier version's graph the new current version.
pub async fn revert(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    sequence_number: i32,
) -> AppResult<Workflow> {
    conn.transaction(async |conn| {
        let workflow = workflow_for_building(conn, actor, workflow_id).await?;
        let graph: serde_json::Value = workflow_versions::table
            .filter(workflow_versions::workflow_id.eq(workflow.id))
            .filter(workflow_versions::sequence_number.eq(sequence_number))
            .select(workflow_versions::graph)
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| {
                AppError::bad_input(
                    "sequenceNumber",
                    format!("the workflow has no version {sequence_number}"),
                )
            })?;
        let graph: Graph = serde_json::from_value(graph).map_err(AppError::internal)?;
        let version = insert_version(conn, &workflow, &graph, actor).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.revert",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({ "to": sequence_number, "versionId": version.id }),
            },
        )
        .await?;
        Ok(workflow)
    })
    .await
}

/// Renames a workflow (and sets its description when given).
pub async fn rename(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    name: &str,
    description: Option<&str>,
) -> AppResult<Workflow> {
    let name = validate::name("name", name, 255)?;
    let description = description
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    conn.transaction(async |conn| {
        let workflow = workflow_for_building(conn, actor, workflow_id).await?;
        let updated: Workflow = diesel::update(workflows::table.find(workflow.id))
            .set((
                workflows::name.eq(&name),
                workflows::description.eq(description.or(workflow.description.clone())),
            ))
            .returning(Workflow::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.rename",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({ "from": workflow.name, "to": name }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Soft-deletes a workflow: it disappears from every list and lookup.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let workflow = workflow_for_building(conn, actor, workflow_id).await?;
        diesel::update(workflows::table.find(workflow.id))
            .set(workflows::deleted_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.delete",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({ "name": workflow.name }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
