//! End-user tokens: what a browser holds instead of the application's secret API key.
//!
//! The application's backend mints one with its API key for one of its end users
//! (`createEndUserToken`); the token is a JWT of its own audience naming the application,
//! the key and the end user, valid 1 hour by default and 24 hours at most. Every use checks
//! that the key still stands: revoking it ends all its tokens at once.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::tokens::{EndUserClaims, TokenSigner};
use crate::auth::{Actor, ClientInfo};
use crate::conversation::end_users;
use crate::db::models::EndUser;
use crate::db::schema::{api_keys, applications, end_users as end_users_table};
use crate::error::{AppError, AppResult};

/// Lifetime of a token when none is asked for.
pub const DEFAULT_TTL_SECS: i64 = 3600;
/// The longest lifetime a token may be given.
pub const MAX_TTL_SECS: i64 = 86_400;
/// The shortest: a token must outlive the round trip to the browser.
pub const MIN_TTL_SECS: i64 = 60;

/// A minted token.
pub struct EndUserToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub end_user: EndUser,
}

/// Mints a token for `end_user_id` (the application's own id of its user, created on first
/// use). Only the application's own API key may: a builder, an end user or another
/// application's key may not.
pub async fn create_end_user_token(
    conn: &mut AsyncPgConnection,
    signer: &TokenSigner,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
    end_user_id: &str,
    ttl_seconds: Option<i64>,
) -> AppResult<EndUserToken> {
    let Actor::ApiKey {
        key_id,
        application_id: own,
        workspace_id,
    } = actor
    else {
        return Err(AppError::Forbidden);
    };
    if own != application_id {
        return Err(AppError::NotFound("application"));
    }
    let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
        return Err(AppError::bad_input(
            "ttlSeconds",
            format!("ttlSeconds must be between {MIN_TTL_SECS} and {MAX_TTL_SECS} (got {ttl})"),
        ));
    }
    conn.transaction(async |conn| {
        let end_user = end_users::named(conn, workspace_id, end_user_id).await?;
        let (token, expires_at) =
            signer.issue_end_user(end_user.id, application_id, key_id, Duration::seconds(ttl))?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "end_user_token.create",
                resource_type: "end_user",
                resource_id: Some(end_user.id),
                metadata: json!({ "applicationId": application_id, "ttlSeconds": ttl }),
            },
        )
        .await?;
        Ok(EndUserToken {
            token,
            expires_at,
            end_user,
        })
    })
    .await
}

/// The actor a verified token stands for, if its key is not revoked, its application not
/// deleted, and its end user still of the key's workspace.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    claims: EndUserClaims,
) -> AppResult<Option<Actor>> {
    let workspace_id: Option<Uuid> = api_keys::table
        .inner_join(applications::table)
        .filter(api_keys::id.eq(claims.key))
        .filter(api_keys::application_id.eq(claims.app))
        .filter(api_keys::revoked_at.is_null())
        .filter(applications::deleted_at.is_null())
        .filter(
            api_keys::workspace_id.eq_any(
                end_users_table::table
                    .filter(end_users_table::id.eq(claims.sub))
                    .select(end_users_table::workspace_id),
            ),
        )
        .select(api_keys::workspace_id)
        .first(conn)
        .await
        .optional()?;
    Ok(workspace_id.map(|workspace_id| Actor::EndUser {
        key_id: claims.key,
        application_id: claims.app,
        workspace_id,
        end_user_id: claims.sub,
    }))
}
