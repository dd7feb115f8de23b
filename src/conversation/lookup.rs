//! Finding a conversation or message for a caller: a builder sees those of its workspaces,
//! an application's API key those of its application. Anything else is NOT_FOUND.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Actor;
use crate::auth::permissions::visible_workspace_ids;
use crate::db::models::{Conversation, Message};
use crate::db::schema::{conversations, messages};
use crate::error::{AppError, AppResult};

/// A message the actor may see.
pub async fn visible_message(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<Message> {
    let query = messages::table
        .find(id)
        .filter(
            messages::conversation_id.eq_any(
                conversations::table
                    .filter(conversations::deleted_at.is_null())
                    .select(conversations::id),
            ),
        )
        .select(Message::as_select())
        .into_boxed();
    let query = match actor {
        Actor::User { user_id } => {
            query.filter(messages::workspace_id.eq_any(visible_workspace_ids(user_id)))
        }
        Actor::ApiKey {
            application_id,
            workspace_id,
            ..
        } => query
            .filter(messages::workspace_id.eq(workspace_id))
            .filter(messages::application_id.eq(application_id)),
    };
    query
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("message"))
}

/// A conversation the actor may see.
pub async fn visible_conversation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<Conversation> {
    let query = conversations::table
        .find(id)
        .filter(conversations::deleted_at.is_null())
        .select(Conversation::as_select())
        .into_boxed();
    let query = match actor {
        Actor::User { user_id } => {
            query.filter(conversations::workspace_id.eq_any(visible_workspace_ids(user_id)))
        }
        Actor::ApiKey {
            application_id,
            workspace_id,
            ..
        } => query
            .filter(conversations::workspace_id.eq(workspace_id))
            .filter(conversations::application_id.eq(application_id)),
    };
    query
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("conversation"))
}
