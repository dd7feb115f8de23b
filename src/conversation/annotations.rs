//! Builders' annotations of replies: a corrected answer kept with the question it answers,
//! used later to reply to matching questions without the model; written on a reply or from a
//! question and answer alone, changed and deleted by editors (Application.annotations lists them).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Message, MessageAnnotation};
use crate::db::schema::{applications, message_annotations, messages};
use crate::error::{AppError, AppResult};
use crate::validate;

/// Annotates a message (EDITOR and up). The question is the user's message the reply
/// answered, when there is one.
pub async fn annotate_message(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    message_id: Uuid,
    content: &str,
    annotation_type: &'static str,
) -> AppResult<MessageAnnotation> {
    let user_id = actor.user_id()?;
    let content = validate::name("content", content, 100_000)?;
    conn.transaction(async |conn| {
        let message: Message = messages::table
            .find(message_id)
            .filter(messages::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .select(Message::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("message"))?;
        authorize_workspace(conn, actor, message.workspace_id, Action::Build).await?;
        let question: Option<String> = match message.query.clone() {
            Some(q) => Some(q),
            None => messages::table
                .filter(messages::conversation_id.eq(message.conversation_id))
                .filter(messages::sequence_number.lt(message.sequence_number))
                .filter(messages::role.eq("USER"))
                .order(messages::sequence_number.desc())
                .select(messages::content)
                .first(conn)
                .await
                .optional()?,
        };
        let annotation: MessageAnnotation = diesel::insert_into(message_annotations::table)
            .values((
                message_annotations::workspace_id.eq(message.workspace_id),
                message_annotations::message_id.eq(message.id),
                message_annotations::conversation_id.eq(message.conversation_id),
                message_annotations::application_id.eq(message.application_id),
                message_annotations::question.eq(question),
                message_annotations::content.eq(&content),
                message_annotations::annotation_type.eq(annotation_type),
                message_annotations::annotated_by.eq(user_id),
            ))
            .returning(MessageAnnotation::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(message.workspace_id),
                action: "message.annotate",
                resource_type: "message_annotation",
                resource_id: Some(annotation.id),
                metadata: json!({ "messageId": message.id, "type": annotation_type }),
            },
        )
        .await?;
        Ok(annotation)
    })
    .await
}

/// Writes an annotation from a question and answer alone, with no message (EDITOR and up):
/// it answers matching questions like one written on a reply.
pub async fn create_annotation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
    question: &str,
    content: &str,
    annotation_type: &'static str,
) -> AppResult<MessageAnnotation> {
    let user_id = actor.user_id()?;
    let question = validate::name("question", question, 10_000)?;
    let content = validate::name("content", content, 100_000)?;
    conn.transaction(async |conn| {
        let workspace_id: Uuid = applications::table
            .find(application_id)
            .filter(applications::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .filter(applications::deleted_at.is_null())
            .select(applications::workspace_id)
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("application"))?;
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        let annotation: MessageAnnotation = diesel::insert_into(message_annotations::table)
            .values((
                message_annotations::workspace_id.eq(workspace_id),
                message_annotations::application_id.eq(application_id),
                message_annotations::question.eq(Some(&question)),
                message_annotations::content.eq(&content),
                message_annotations::annotation_type.eq(annotation_type),
                message_annotations::annotated_by.eq(user_id),
            ))
            .returning(MessageAnnotation::as_returning())
            .get_result(conn)
            .await?;
        record(conn, actor, client, &annotation, "annotation.create").await?;
        Ok(annotation)
    })
    .await
}

/// What `updateAnnotation` changes; None keeps the value.
#[derive(Debug, Default)]
pub struct AnnotationChanges {
    pub question: Option<String>,
    pub content: Option<String>,
    pub annotation_type: Option<&'static str>,
}

/// Changes an annotation's question, answer or type (EDITOR and up). An annotation written
/// without a message keeps a question.
pub async fn update_annotation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    changes: AnnotationChanges,
) -> AppResult<MessageAnnotation> {
    let question = changes
        .question
        .as_deref()
        .map(|q| validate::name("question", q, 10_000))
        .transpose()?;
    let content = changes
        .content
        .as_deref()
        .map(|c| validate::name("content", c, 100_000))
        .transpose()?;
    conn.transaction(async |conn| {
        let current = editable(conn, actor, id).await?;
        let annotation: MessageAnnotation = diesel::update(message_annotations::table.find(id))
            .set((
                message_annotations::question.eq(question.or(current.question)),
                message_annotations::content.eq(content.unwrap_or(current.content)),
                message_annotations::annotation_type
                    .eq(changes.annotation_type.unwrap_or(&current.annotation_type)),
            ))
            .returning(MessageAnnotation::as_returning())
            .get_result(conn)
            .await?;
        record(conn, actor, client, &annotation, "annotation.update").await?;
        Ok(annotation)
    })
    .await
}

/// Deletes an annotation (EDITOR and up): it no longer answers questions.
pub async fn delete_annotation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<bool> {
    conn.transaction(async |conn| {
        let annotation = editable(conn, actor, id).await?;
        diesel::delete(message_annotations::table.find(id))
            .execute(conn)
            .await?;
        record(conn, actor, client, &annotation, "annotation.delete").await?;
        Ok(true)
    })
    .await
}

/// The annotation, locked, when the caller may change it; NOT_FOUND outside their workspaces.
async fn editable(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<MessageAnnotation> {
    let user_id = actor.user_id()?;
    let annotation: MessageAnnotation = message_annotations::table
        .find(id)
        .filter(message_annotations::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(MessageAnnotation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("annotation"))?;
    authorize_workspace(conn, actor, annotation.workspace_id, Action::Build).await?;
    Ok(annotation)
}

async fn record(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    annotation: &MessageAnnotation,
    action: &'static str,
) -> AppResult<()> {
    audit::record(
        conn,
        actor,
        client,
        AuditEntry {
            workspace_id: Some(annotation.workspace_id),
            action,
            resource_type: "message_annotation",
            resource_id: Some(annotation.id),
            metadata: json!({
                "applicationId": annotation.application_id,
                "messageId": annotation.message_id,
                "type": annotation.annotation_type,
            }),
        },
    )
    .await
}
