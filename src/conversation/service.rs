//! Renaming and deleting conversations: builders (EDITOR and up) any of their workspaces',
//! an application's API key those of its application, an end user its own.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::Conversation;
use crate::db::schema::conversations;
use crate::error::{AppError, AppResult};
use crate::validate;

/// The conversation the actor may change, locked for the change.
async fn conversation_to_change(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<Conversation> {
    let Actor::User { user_id } = actor else {
        let visible = super::lookup::visible_conversation(conn, actor, id).await?;
        return Ok(conversations::table
            .find(visible.id)
            .select(Conversation::as_select())
            .for_update()
            .first(conn)
            .await?);
    };
    let conversation: Conversation = conversations::table
        .find(id)
        .filter(conversations::deleted_at.is_null())
        .filter(conversations::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(Conversation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("conversation"))?;
    authorize_workspace(conn, actor, conversation.workspace_id, Action::Build).await?;
    Ok(conversation)
}

pub async fn rename_conversation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    title: &str,
) -> AppResult<Conversation> {
    let title = validate::name("title", title, 500)?;
    conn.transaction(async |conn| {
        let current = conversation_to_change(conn, actor, id).await?;
        let updated: Conversation = diesel::update(conversations::table.find(current.id))
            .set(conversations::title.eq(&title))
            .returning(Conversation::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "conversation.rename",
                resource_type: "conversation",
                resource_id: Some(current.id),
                metadata: json!({ "from": current.title, "to": title }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Archives a conversation (status ARCHIVED: kept, read-only, out of the active lists); one
/// already archived is returned as it is.
pub async fn archive_conversation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<Conversation> {
    set_status(conn, actor, client, id, "ARCHIVED", "conversation.archive").await
}

/// Takes a conversation out of the archive (status ACTIVE): it can be continued again; one
/// not archived is returned as it is.
pub async fn unarchive_conversation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<Conversation> {
    set_status(conn, actor, client, id, "ACTIVE", "conversation.unarchive").await
}

async fn set_status(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    status: &'static str,
    action: &'static str,
) -> AppResult<Conversation> {
    conn.transaction(async |conn| {
        let current = conversation_to_change(conn, actor, id).await?;
        if current.status == status {
            return Ok(current);
        }
        let updated: Conversation = diesel::update(conversations::table.find(current.id))
            .set(conversations::status.eq(status))
            .returning(Conversation::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action,
                resource_type: "conversation",
                resource_id: Some(current.id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

pub async fn delete_conversation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let current = conversation_to_change(conn, actor, id).await?;
        diesel::update(conversations::table.find(current.id))
            .set(conversations::deleted_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "conversation.delete",
                resource_type: "conversation",
                resource_id: Some(current.id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
