//! End users' feedback on replies: one per message and end user; giving it again replaces it.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::end_users;
use super::lookup::visible_message;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::authorize_workspace;
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::MessageFeedback;
use crate::db::schema::message_feedbacks;
use crate::error::{AppError, AppResult};

/// `submitFeedback`: by the end user named (`endUserId`), else the conversation's own, else
/// (a builder trying the application) the builder's.
pub async fn submit_feedback(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    message_id: Uuid,
    rating: &'static str,
    content: Option<&str>,
    end_user_id: Option<&str>,
) -> AppResult<MessageFeedback> {
    let content = content
        .map(|c| crate::validate::text("content", c.trim(), 10_000))
        .transpose()?
        .filter(|c| !c.is_empty());
    let message = visible_message(conn, actor, message_id).await?;
    if matches!(actor, Actor::User { .. }) {
        authorize_workspace(conn, actor, message.workspace_id, Action::Run).await?;
    }
    if message.role != "ASSISTANT" {
        return Err(AppError::bad_input(
            "messageId",
            "feedback is given on replies",
        ));
    }
    conn.transaction(async |conn| {
        let owner: Option<Uuid> = crate::db::schema::conversations::table
            .find(message.conversation_id)
            .select(crate::db::schema::conversations::end_user_id)
            .first(conn)
            .await?;
        let end_user = match (end_user_id, owner, actor) {
            (
                named,
                _,
                Actor::EndUser {
                    end_user_id: own, ..
                },
            ) => end_users::token_holder(conn, own, named).await?.id,
            (Some(named), _, _) => {
                end_users::named(conn, message.workspace_id, named)
                    .await?
                    .id
            }
            (None, Some(owner), Actor::ApiKey { .. }) => owner,
            (None, _, Actor::User { user_id }) => {
                end_users::named(conn, message.workspace_id, &format!("builder:{user_id}"))
                    .await?
                    .id
            }
            (None, None, Actor::ApiKey { .. }) => {
                return Err(AppError::bad_input(
                    "endUserId",
                    "name the end user giving the feedback",
                ));
            }
        };
        let feedback: MessageFeedback = diesel::insert_into(message_feedbacks::table)
            .values((
                message_feedbacks::workspace_id.eq(message.workspace_id),
                message_feedbacks::message_id.eq(message.id),
                message_feedbacks::conversation_id.eq(message.conversation_id),
                message_feedbacks::application_id.eq(message.application_id),
                message_feedbacks::end_user_id.eq(end_user),
                message_feedbacks::rating.eq(rating),
                message_feedbacks::content.eq(&content),
            ))
            .on_conflict((
                message_feedbacks::message_id,
                message_feedbacks::end_user_id,
            ))
            .do_update()
            .set((
                message_feedbacks::rating.eq(excluded(message_feedbacks::rating)),
                message_feedbacks::content.eq(excluded(message_feedbacks::content)),
                message_feedbacks::updated_at.eq(chrono::Utc::now()),
            ))
            .returning(MessageFeedback::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(message.workspace_id),
                action: "message.feedback",
                resource_type: "message_feedback",
                resource_id: Some(feedback.id),
                metadata: json!({ "messageId": message.id, "rating": rating }),
            },
        )
        .await?;
        Ok(feedback)
    })
    .await
}
