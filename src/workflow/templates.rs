//! Workflow templates (seed 004): official ones shipped with the server, community ones
//! (public) and a user's own. Creating a workflow from one records where it came from.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::graph::Graph;
use super::service::{self, NewWorkflow, Source};
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Workflow, WorkflowTemplate};
use crate::db::schema::{workflow_templates, workflow_versions, workflows};
use crate::error::{AppError, AppResult};
use crate::validate;

/// The official templates, shipped in the binary.
const OFFICIAL: [&str; 5] = [
    include_str!("templates/chat_bot.json"),
    include_str!("templates/rag_chat_bot.json"),
    include_str!("templates/condition_router.json"),
    include_str!("templates/code_transform.json"),
    include_str!("templates/agent_with_tools.json"),
];

#[derive(Deserialize)]
struct OfficialTemplate {
    key: String,
    name: String,
    description: String,
    category: String,
    graph: Graph,
}

/// Writes the official templates (new ones inserted, changed ones updated, usage kept).
/// Run at start-up; safe when several instances start together.
pub async fn load_official(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    let mut loaded = 0;
    for text in OFFICIAL {
        let template: OfficialTemplate = serde_json::from_str(text).map_err(AppError::internal)?;
        template.graph.validate()?;
        let graph = serde_json::to_value(&template.graph).map_err(AppError::internal)?;
        diesel::insert_into(workflow_templates::table)
            .values((
                workflow_templates::official_key.eq(&template.key),
                workflow_templates::name.eq(&template.name),
                workflow_templates::description.eq(&template.description),
                workflow_templates::category.eq(&template.category),
                workflow_templates::graph.eq(&graph),
                workflow_templates::is_official.eq(true),
                workflow_templates::is_public.eq(true),
            ))
            .on_conflict(workflow_templates::official_key)
            .do_update()
            .set((
                workflow_templates::name.eq(&template.name),
                workflow_templates::description.eq(&template.description),
                workflow_templates::category.eq(&template.category),
                workflow_templates::graph.eq(&graph),
            ))
            .execute(conn)
            .await?;
        loaded += 1;
    }
    Ok(loaded)
}

/// The templates a user may use: official, public, and their own.
#[diesel::dsl::auto_type]
pub fn usable_by(user_id: Uuid) -> _ {
    workflow_templates::is_official
        .eq(true)
        .or(workflow_templates::is_public.eq(true))
        .or(workflow_templates::created_by.eq(user_id))
}

/// Creates a workflow from a template the caller may use, and counts the use.
pub async fn create_workflow_from_template(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    template_id: Uuid,
    workspace_id: Uuid,
    name: &str,
) -> AppResult<Workflow> {
    let user_id = actor.user_id()?;
    let template: WorkflowTemplate = workflow_templates::table
        .find(template_id)
        .filter(usable_by(user_id))
        .select(WorkflowTemplate::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("workflow template"))?;
    let graph: Graph = serde_json::from_value(template.graph.clone())
        .map_err(|_| AppError::bad_input("templateId", "the template's graph cannot be read"))?;
    let new = NewWorkflow {
        workspace_id,
        name: name.to_string(),
        description: template.description.clone(),
        graph,
        source: Source::Template(template.id),
    };
    conn.transaction(async |conn| {
        let workflow = service::create_workflow(conn, actor, client, new).await?;
        diesel::update(workflow_templates::table.find(template.id))
            .set(workflow_templates::usage_count.eq(workflow_templates::usage_count + 1))
            .execute(conn)
            .await?;
        Ok(workflow)
    })
    .await
}

/// Saves a workflow's current graph as a template of the caller's (public when asked, then
/// without header values and other credentials: `published`).
pub async fn save_workflow_as_template(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    name: &str,
    description: Option<&str>,
    is_public: bool,
) -> AppResult<WorkflowTemplate> {
    let user_id = actor.user_id()?;
    let name = validate::name("name", name, 255)?;
    let description = description
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    conn.transaction(async |conn| {
        let found: Option<(Uuid, serde_json::Value)> = workflows::table
            .inner_join(
                workflow_versions::table.on(workflow_versions::workflow_id.eq(workflows::id)),
            )
            .filter(workflows::id.eq(workflow_id))
            .filter(workflows::deleted_at.is_null())
            .filter(workflows::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .filter(workflow_versions::is_current.eq(true))
            .select((workflows::workspace_id, workflow_versions::graph))
            .first(conn)
            .await
            .optional()?;
        let (workspace_id, graph) = found.ok_or(AppError::NotFound("workflow"))?;
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        // Everyone may read a public template: it carries no credentials.
        let graph = if is_public {
            super::published::without_secrets(&graph)
        } else {
            graph
        };
        let template: WorkflowTemplate = diesel::insert_into(workflow_templates::table)
            .values((
                workflow_templates::name.eq(&name),
                workflow_templates::description.eq(&description),
                workflow_templates::graph.eq(&graph),
                workflow_templates::is_public.eq(is_public),
                workflow_templates::created_by.eq(user_id),
                workflow_templates::source_workflow_id.eq(workflow_id),
            ))
            .returning(WorkflowTemplate::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "workflow_template.create",
                resource_type: "workflow_template",
                resource_id: Some(template.id),
                metadata: json!({ "workflowId": workflow_id, "isPublic": is_public }),
            },
        )
        .await?;
        Ok(template)
    })
    .await
}
