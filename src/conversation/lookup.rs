//! Finding a conversation or message for a caller: a builder sees those of its workspaces,
//! an application's API key those of its application, an end user its own conversations of
//! that application. Anything else is NOT_FOUND.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::end_users;
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor};
use crate::db::models::{Conversation, EndUser, Message};
use crate::db::schema::{applications, conversations, messages};
use crate::error::{AppError, AppResult};

/// The messages of a conversation changed at or after `since`, oldest change first (at
/// most `limit`): what a `conversationEvents` subscriber may have missed while the bus was
/// away. The subscription checked the conversation; this reads it.
pub async fn messages_changed_since(
    conn: &mut AsyncPgConnection,
    conversation_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
    limit: i64,
) -> AppResult<Vec<Message>> {
    Ok(messages::table
        .filter(messages::conversation_id.eq(conversation_id))
        .filter(messages::updated_at.ge(since))
        .order(messages::updated_at.asc())
        .limit(limit)
        .select(Message::as_select())
        .load(conn)
        .await?)
}

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
        Actor::EndUser {
            application_id,
            workspace_id,
            end_user_id,
            ..
        } => query
            .filter(messages::workspace_id.eq(workspace_id))
            .filter(messages::application_id.eq(application_id))
            .filter(
                messages::conversation_id.eq_any(
                    conversations::table
                        .filter(conversations::end_user_id.eq(end_user_id))
                        .select(conversations::id),
                ),
            ),
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
        Actor::EndUser {
            application_id,
            workspace_id,
            end_user_id,
            ..
        } => query
            .filter(conversations::workspace_id.eq(workspace_id))
            .filter(conversations::application_id.eq(application_id))
            .filter(conversations::end_user_id.eq(end_user_id)),
    };
    query
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("conversation"))
}

/// The end user whose conversations of an application the actor asks for
/// (`endUserConversations`): a builder who may read the application's workspace names any
/// end user, the application's API key must name one, an end user's token is its own (naming
/// another is FORBIDDEN). `None` when that end user has never used the workspace.
pub async fn end_user_for_listing(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    application_id: Uuid,
    end_user_id: Option<&str>,
) -> AppResult<Option<EndUser>> {
    let required = || {
        AppError::bad_input(
            "endUserId",
            "name the end user whose conversations are listed",
        )
    };
    match actor {
        Actor::User { user_id } => {
            let workspace_id: Uuid = applications::table
                .find(application_id)
                .filter(applications::deleted_at.is_null())
                .filter(applications::workspace_id.eq_any(visible_workspace_ids(user_id)))
                .select(applications::workspace_id)
                .first(conn)
                .await
                .optional()?
                .ok_or(AppError::NotFound("application"))?;
            authorize_workspace(conn, actor, workspace_id, Action::Read).await?;
            let named = end_user_id.ok_or_else(required)?;
            end_users::find(conn, workspace_id, named).await
        }
        Actor::ApiKey {
            application_id: own,
            workspace_id,
            ..
        } => {
            if own != application_id {
                return Err(AppError::NotFound("application"));
            }
            let named = end_user_id.ok_or_else(required)?;
            end_users::find(conn, workspace_id, named).await
        }
        Actor::EndUser {
            application_id: own,
            end_user_id: holder,
            ..
        } => {
            if own != application_id {
                return Err(AppError::NotFound("application"));
            }
            Ok(Some(
                end_users::token_holder(conn, holder, end_user_id).await?,
            ))
        }
    }
}
