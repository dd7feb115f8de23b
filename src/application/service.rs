//! Creating, configuring, publishing and deleting applications.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::Application;
use crate::db::schema::{applications, dataset_application_joins, datasets, workflows};
use crate::error::{AppError, AppResult};
use crate::validate;

pub struct NewApplication {
    pub workspace_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// CHAT or WORKFLOW.
    pub mode: &'static str,
    pub workflow_id: Option<Uuid>,
    pub dataset_ids: Vec<Uuid>,
}

/// The settings a builder may change; `None` leaves a setting as it is.
#[derive(Default)]
pub struct ApplicationChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub workflow_id: Option<Uuid>,
    pub opening_statement: Option<String>,
    pub suggested_questions: Option<Vec<String>>,
    pub annotation_reply_enabled: Option<bool>,
    pub annotation_reply_threshold: Option<f64>,
}

/// Checks that a workflow exists, is not deleted and lives in the workspace.
async fn check_workflow(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    workflow_id: Uuid,
) -> AppResult<()> {
    let found: i64 = workflows::table
        .filter(workflows::id.eq(workflow_id))
        .filter(workflows::workspace_id.eq(workspace_id))
        .filter(workflows::deleted_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    if found == 0 {
        return Err(AppError::bad_input(
            "workflowId",
            "no workflow with this id in the application's workspace",
        ));
    }
    Ok(())
}

pub async fn create_application(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    input: NewApplication,
) -> AppResult<Application> {
    let name = validate::name("name", &input.name, 255)?;
    let description = input
        .description
        .as_deref()
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, input.workspace_id, Action::Build).await?;
        if let Some(workflow_id) = input.workflow_id {
            check_workflow(conn, input.workspace_id, workflow_id).await?;
        }
        let application: Application = diesel::insert_into(applications::table)
            .values((
                applications::workspace_id.eq(input.workspace_id),
                applications::name.eq(&name),
                applications::description.eq(&description),
                applications::mode.eq(input.mode),
                applications::workflow_id.eq(input.workflow_id),
                applications::created_by.eq(actor.user_id().ok()),
            ))
            .returning(Application::as_returning())
            .get_result(conn)
            .await?;
        let mut linked = input.dataset_ids.clone();
        linked.sort();
        linked.dedup();
        if !linked.is_empty() {
            let found: i64 = datasets::table
                .filter(datasets::id.eq_any(&linked))
                .filter(datasets::workspace_id.eq(input.workspace_id))
                .filter(datasets::deleted_at.is_null())
                .count()
                .get_result(conn)
                .await?;
            if usize::try_from(found).unwrap_or(0) != linked.len() {
                return Err(AppError::bad_input(
                    "datasetIds",
                    "every dataset must exist in the application's workspace",
                ));
            }
            let rows: Vec<_> = linked
                .iter()
                .map(|d| {
                    (
                        dataset_application_joins::workspace_id.eq(input.workspace_id),
                        dataset_application_joins::dataset_id.eq(*d),
                        dataset_application_joins::application_id.eq(application.id),
                    )
                })
                .collect();
            diesel::insert_into(dataset_application_joins::table)
                .values(rows)
                .execute(conn)
                .await?;
        }
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(application.workspace_id),
                action: "application.create",
                resource_type: "application",
                resource_id: Some(application.id),
                metadata: json!({ "name": name, "mode": input.mode, "datasetIds": linked }),
            },
        )
        .await?;
        Ok(application)
    })
    .await
}

/// An application the actor may build in, locked for the transaction.
pub(crate) async fn application_for_action(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    application_id: Uuid,
    action: Action,
) -> AppResult<Application> {
    let user_id = actor.user_id()?;
    let application: Application = applications::table
        .find(application_id)
        .filter(applications::deleted_at.is_null())
        .filter(applications::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(Application::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("application"))?;
    authorize_workspace(conn, actor, application.workspace_id, action).await?;
    Ok(application)
}

pub async fn update_application(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
    changes: ApplicationChanges,
) -> AppResult<Application> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 255))
        .transpose()?;
    let description = changes
        .description
        .as_deref()
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    let opening = changes
        .opening_statement
        .as_deref()
        .map(|s| validate::text("openingStatement", s, 10_000))
        .transpose()?;
    if let Some(questions) = &changes.suggested_questions {
        if questions.len() > 20 {
            return Err(AppError::bad_input(
                "suggestedQuestions",
                "at most 20 suggested questions",
            ));
        }
        for q in questions {
            validate::name("suggestedQuestions", q, 500)?;
        }
    }
    if let Some(t) = changes.annotation_reply_threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(AppError::bad_input(
            "annotationReplyThreshold",
            "the threshold is between 0 and 1",
        ));
    }
    conn.transaction(async |conn| {
        let current = application_for_action(conn, actor, application_id, Action::Build).await?;
        if let Some(workflow_id) = changes.workflow_id {
            check_workflow(conn, current.workspace_id, workflow_id).await?;
        }
        let updated: Application = diesel::update(applications::table.find(current.id))
            .set((
                applications::name.eq(name.clone().unwrap_or(current.name.clone())),
                applications::description.eq(description.clone().or(current.description.clone())),
                applications::workflow_id.eq(changes.workflow_id.or(current.workflow_id)),
                applications::opening_statement
                    .eq(opening.clone().or(current.opening_statement.clone())),
                applications::suggested_questions.eq(changes
                    .suggested_questions
                    .as_ref()
                    .map(|q| json!(q))
                    .unwrap_or(current.suggested_questions.clone())),
                applications::annotation_reply_enabled.eq(changes
                    .annotation_reply_enabled
                    .unwrap_or(current.annotation_reply_enabled)),
                applications::annotation_reply_threshold.eq(changes
                    .annotation_reply_threshold
                    .map(|t| t as f32)
                    .unwrap_or(current.annotation_reply_threshold)),
            ))
            .returning(Application::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "application.update",
                resource_type: "application",
                resource_id: Some(updated.id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Publishes an application: end users can reach it through its API keys.
pub async fn publish_application(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
) -> AppResult<Application> {
    conn.transaction(async |conn| {
        let current = application_for_action(conn, actor, application_id, Action::Build).await?;
        let Some(workflow_id) = current.workflow_id else {
            return Err(AppError::bad_input(
                "id",
                "an application needs a workflow before it is published",
            ));
        };
        check_workflow(conn, current.workspace_id, workflow_id).await?;
        let updated: Application = diesel::update(applications::table.find(current.id))
            .set((
                applications::status.eq("PUBLISHED"),
                applications::published_at.eq(Utc::now()),
            ))
            .returning(Application::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "application.publish",
                resource_type: "application",
                resource_id: Some(updated.id),
                metadata: json!({ "workflowId": workflow_id }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

pub async fn delete_application(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let current = application_for_action(conn, actor, application_id, Action::Build).await?;
        diesel::update(applications::table.find(current.id))
            .set(applications::deleted_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "application.delete",
                resource_type: "application",
                resource_id: Some(current.id),
                metadata: json!({ "name": current.name }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
