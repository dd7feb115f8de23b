//! Builders' annotations of replies: a corrected answer kept with the question it answers,
//! used later to reply to matching questions without the model.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Message, MessageAnnotation};
use crate::db::schema::{message_annotations, messages};
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
