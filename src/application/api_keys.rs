//! Application API keys: `app-<secret>`, shown once, stored as SHA-256 with a short prefix
//! kept for display. A key authenticates as its application, nothing more.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::service::application_for_action;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::tokens::{hash_token, new_opaque_token};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::ApiKey;
use crate::db::schema::{api_keys, applications};
use crate::db::statement::KeepPrepared;
use crate::error::{AppError, AppResult};
use crate::validate;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "app-";
/// Characters of the key kept in clear for display (`app-` and 8 more).
const SHOWN: usize = 12;

/// Creates a key for an application (OWNER and ADMIN); returns it with its secret.
pub async fn create_api_key(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
    name: &str,
) -> AppResult<(ApiKey, String)> {
    let name = validate::name("name", name, 255)?;
    let secret = format!("{KEY_PREFIX}{}", new_opaque_token());
    conn.transaction(async |conn| {
        let application = application_for_action(conn, actor, application_id, Action::ManageApiKeys).await?;
        let key: ApiKey = diesel::insert_into(api_keys::table)
            .values((
                api_keys::workspace_id.eq(application.workspace_id),
                api_keys::application_id.eq(application.id),
                api_keys::name.eq(&name),
                api_keys::prefix.eq(&secret[..SHOWN]),
                api_keys::key_hash.eq(hash_token(&secret)),
                api_keys::created_by.eq(actor.user_id().ok()),
            ))
            .returning(ApiKey::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(application.workspace_id),
                action: "api_key.create",
                resource_type: "api_key",
                resource_id: Some(key.id),
                metadata: json!({ "applicationId": application.id, "name": name, "prefix": key.prefix }),
            },
        )
        .await?;
        Ok((key, secret.clone()))
    })
    .await
}

/// Revokes a key: it stops working at once.
pub async fn revoke_api_key(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    key_id: Uuid,
) -> AppResult<ApiKey> {
    let user_id = actor.user_id()?;
    conn.transaction(async |conn| {
        let key: ApiKey = api_keys::table
            .find(key_id)
            .filter(api_keys::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .select(ApiKey::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("API key"))?;
        authorize_workspace(conn, actor, key.workspace_id, Action::ManageApiKeys).await?;
        let key: ApiKey = diesel::update(api_keys::table.find(key.id))
            .set(api_keys::revoked_at.eq(key.revoked_at.unwrap_or_else(Utc::now)))
            .returning(ApiKey::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(key.workspace_id),
                action: "api_key.revoke",
                resource_type: "api_key",
                resource_id: Some(key.id),
                metadata: json!({ "applicationId": key.application_id }),
            },
        )
        .await?;
        Ok(key)
    })
    .await
}

/// The actor an `app-...` key stands for, if it is a live key of an application that exists.
/// Marks the key used (at most once a minute, so a busy key costs no write per request).
pub async fn authenticate(conn: &mut AsyncPgConnection, secret: &str) -> AppResult<Option<Actor>> {
    if !secret.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let found: Option<(Uuid, Uuid, Uuid)> = api_keys::table
        .inner_join(applications::table)
        .filter(api_keys::key_hash.eq(hash_token(secret)))
        .filter(api_keys::revoked_at.is_null())
        .filter(applications::deleted_at.is_null())
        .select((
            api_keys::id,
            api_keys::application_id,
            api_keys::workspace_id,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((key_id, application_id, workspace_id)) = found else {
        return Ok(None);
    };
    diesel::update(api_keys::table.find(key_id))
        .filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(Utc::now() - chrono::Duration::minutes(1))),
        )
        .set(api_keys::last_used_at.eq(Utc::now()))
        .prepared()
        .execute(conn)
        .await?;
    Ok(Some(Actor::ApiKey {
        key_id,
        application_id,
        workspace_id,
    }))
}

/// Whether a key still stands: not revoked, its application not deleted.
pub async fn is_live(conn: &mut AsyncPgConnection, key_id: Uuid) -> AppResult<bool> {
    let found: Option<Uuid> = api_keys::table
        .inner_join(applications::table)
        .filter(api_keys::id.eq(key_id))
        .filter(api_keys::revoked_at.is_null())
        .filter(applications::deleted_at.is_null())
        .select(api_keys::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}
