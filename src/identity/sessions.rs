//! Sessions: an access token plus an opaque refresh token. Refresh tokens are stored hashed,
//! live 30 days, are rotated on every use and consumed atomically; presenting one that was
//! already rotated revokes its whole family (the session it belongs to), except the same
//! client presenting it again within `REUSE_GRACE` while its successor is unused (two tabs
//! refreshing at once), which gets that same successor.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::tokens::{hash_token, new_opaque_token};
use crate::auth::{Actor, ClientInfo};
use crate::db::models::User;
use crate::db::schema::{refresh_tokens, users};
use crate::error::{AppError, AppResult};
use crate::realtime::events::Event;
use crate::secrets;
use crate::validate::truncate;

/// How long a refresh token is valid.
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(30);

/// What a successful login, registration or refresh returns.
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
struct NewRefreshToken {
    user_id: Uuid,
    token_hash: String,
    family_id: Uuid,
    expires_at: DateTime<Utc>,
    user_agent: Option<String>,
    ip: Option<String>,
}

/// Stores a new refresh token of `family_id` and signs an access token. Runs inside the
/// caller's transaction; returns the session and the stored token's id.
pub(crate) async fn open(
    app: &App,
    conn: &mut AsyncPgConnection,
    user: User,
    family_id: Uuid,
    client: &ClientInfo,
) -> AppResult<(Session, Uuid)> {
    let refresh_token = new_opaque_token();
    let id: Uuid = diesel::insert_into(refresh_tokens::table)
        .values(NewRefreshToken {
            user_id: user.id,
            token_hash: hash_token(&refresh_token),
            family_id,
            expires_at: Utc::now() + REFRESH_TOKEN_TTL,
            user_agent: client.user_agent.as_deref().map(|ua| truncate(ua, 500)),
            ip: client.ip.as_deref().map(|ip| truncate(ip, 64)),
        })
        .returning(refresh_tokens::id)
        .get_result(conn)
        .await?;
    let (access_token, access_token_expires_at) = app.auth.signer.issue(user.id, family_id)?;
    Ok((
        Session {
            user,
            access_token,
            access_token_expires_at,
            refresh_token,
        },
        id,
    ))
}

/// Exchanges a refresh token for a new session of the same family.
pub async fn refresh(
    app: &App,
    conn: &mut AsyncPgConnection,
    client: &ClientInfo,
    token: &str,
) -> AppResult<Session> {
    app.auth
        .limiter
        .attempt(crate::auth::rate_limit::REFRESH, None, client.ip.as_deref())
        .await?;
    let hash = hash_token(token);
    let outcome = conn
        .transaction(async |conn| {
            // Consuming is one UPDATE: of two concurrent uses, exactly one gets the row.
            let consumed: Option<(Uuid, Uuid, Uuid)> = diesel::update(refresh_tokens::table)
                .filter(refresh_tokens::token_hash.eq(&hash))
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::expires_at.gt(Utc::now()))
                .set(refresh_tokens::revoked_at.eq(Utc::now()))
                .returning((
                    refresh_tokens::id,
                    refresh_tokens::user_id,
                    refresh_tokens::family_id,
                ))
                .get_result(conn)
                .await
                .optional()?;
            let Some((old_id, user_id, family_id)) = consumed else {
                return Ok::<_, AppError>(None);
            };
            let Some(user) = active_user(conn, user_id).await? else {
                return Ok(None);
            };
            let (session, new_id) = open(app, conn, user, family_id, client).await?;
            // The new token, sealed, for a second tab presenting the old one within the
            // grace period (`reused_in_grace`); the old token's own predecessor no longer
            // needs its copy.
            let successor = secrets::encrypt(
                &app.config.encryption_key,
                session.refresh_token.as_bytes(),
                &successor_binding(old_id),
            )
            .map_err(AppError::internal)?;
            diesel::update(refresh_tokens::table.find(old_id))
                .set((
                    refresh_tokens::replaced_by.eq(new_id),
                    refresh_tokens::successor_sealed.eq(successor),
                ))
                .execute(conn)
                .await?;
            diesel::update(refresh_tokens::table.filter(refresh_tokens::replaced_by.eq(old_id)))
                .set(refresh_tokens::successor_sealed.eq(None::<Vec<u8>>))
                .execute(conn)
                .await?;
            audit::record(
                conn,
                Actor::User { user_id },
                client,
                AuditEntry {
                    workspace_id: None,
                    action: "session.refresh",
                    resource_type: "user",
                    resource_id: Some(user_id),
                    metadata: json!({ "family": family_id }),
                },
            )
            .await?;
            Ok(Some(session))
        })
        .await?;
    match outcome {
        Some(session) => Ok(session),
        None => {
            if let Some(session) = reused_in_grace(app, conn, client, &hash).await? {
                return Ok(session);
            }
            if let Some((user_id, family_id)) = revoke_family_if_reused(conn, &hash).await? {
                ended(app, user_id, Some(family_id)).await;
            }
            Err(AppError::Unauthenticated)
        }
    }
}

/// The account of `user_id`, unless it was deactivated.
async fn active_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> AppResult<Option<User>> {
    Ok(users::table
        .find(user_id)
        .filter(users::is_active.eq(true))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// How long after a refresh token was exchanged the same client may present it again and
/// get the same new token (two tabs refreshing at once), instead of the session being
/// revoked as a stolen copy.
pub const REUSE_GRACE: Duration = Duration::seconds(10);

/// What a sealed successor token is bound to: the row of the token it replaced.
fn successor_binding(token_id: Uuid) -> String {
    format!("refresh_tokens.successor_sealed:{token_id}")
}

/// A rotated token presented again within `REUSE_GRACE` by the client its successor was
/// issued to, while that successor is unused: the same successor, with a new access token.
async fn reused_in_grace(
    app: &App,
    conn: &mut AsyncPgConnection,
    client: &ClientInfo,
    hash: &str,
) -> AppResult<Option<Session>> {
    /// id, user, successor, its sealed copy, when it was rotated.
    type Rotated = (Uuid, Uuid, Uuid, Option<Vec<u8>>, Option<DateTime<Utc>>);
    let rotated: Option<Rotated> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .filter(refresh_tokens::replaced_by.is_not_null())
        .select((
            refresh_tokens::id,
            refresh_tokens::user_id,
            refresh_tokens::replaced_by.assume_not_null(),
            refresh_tokens::successor_sealed,
            refresh_tokens::revoked_at,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((old_id, user_id, successor_id, Some(sealed), Some(rotated_at))) = rotated else {
        return Ok(None);
    };
    if Utc::now() - rotated_at > REUSE_GRACE {
        return Ok(None);
    }
    let successor: Option<(Uuid, Option<String>, Option<String>)> = refresh_tokens::table
        .find(successor_id)
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(Utc::now()))
        .select((
            refresh_tokens::family_id,
            refresh_tokens::ip,
            refresh_tokens::user_agent,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((family_id, ip, user_agent)) = successor else {
        return Ok(None);
    };
    let same_client = ip == client.ip.as_deref().map(|ip| truncate(ip, 64))
        && user_agent == client.user_agent.as_deref().map(|ua| truncate(ua, 500));
    if !same_client {
        return Ok(None);
    }
    let Ok(token) = secrets::decrypt(
        &app.config.encryption_key,
        &sealed,
        &successor_binding(old_id),
    ) else {
        return Ok(None);
    };
    let refresh_token = String::from_utf8(token).map_err(AppError::internal)?;
    let Some(user) = active_user(conn, user_id).await? else {
        return Ok(None);
    };
    let (access_token, access_token_expires_at) = app.auth.signer.issue(user.id, family_id)?;
    Ok(Some(Session {
        user,
        access_token,
        access_token_expires_at,
        refresh_token,
    }))
}

/// Tells live connections opened in the session `session_id` of `user_id` (with `None`: in
/// any of its sessions) that it ended.
pub(crate) async fn ended(app: &App, user_id: Uuid, session_id: Option<Uuid>) {
    app.realtime
        .rights_changed(Event::SessionsEnded {
            user_id,
            session_id,
        })
        .await;
}

/// A token that was rotated already is being presented again: someone holds a copy, so the
/// whole family is revoked. Returns the user and the family when it was.
async fn revoke_family_if_reused(
    conn: &mut AsyncPgConnection,
    hash: &str,
) -> AppResult<Option<(Uuid, Uuid)>> {
    let reused: Option<(Uuid, Uuid)> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .filter(refresh_tokens::replaced_by.is_not_null())
        .select((refresh_tokens::user_id, refresh_tokens::family_id))
        .first(conn)
        .await
        .optional()?;
    if let Some((_, family_id)) = reused {
        let revoked = diesel::update(refresh_tokens::table)
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null())
            .set(refresh_tokens::revoked_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        tracing::warn!(%family_id, revoked, "a rotated refresh token was reused: session revoked");
    }
    Ok(reused)
}

/// Ends the session the refresh token belongs to (its whole family), and the live
/// connections opened in it. Always succeeds, so it tells nothing about the token.
pub async fn logout(
    app: &App,
    conn: &mut AsyncPgConnection,
    client: &ClientInfo,
    token: &str,
) -> AppResult<()> {
    let hash = hash_token(token);
    let session = conn
        .transaction(async |conn| {
            let found: Option<(Uuid, Uuid)> = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select((refresh_tokens::user_id, refresh_tokens::family_id))
                .first(conn)
                .await
                .optional()?;
            let Some((user_id, family_id)) = found else {
                return Ok(None);
            };
            let revoked = diesel::update(refresh_tokens::table)
                .filter(refresh_tokens::family_id.eq(family_id))
                .filter(refresh_tokens::revoked_at.is_null())
                .set(refresh_tokens::revoked_at.eq(Utc::now()))
                .execute(conn)
                .await?;
            if revoked > 0 {
                audit::record(
                    conn,
                    Actor::User { user_id },
                    client,
                    AuditEntry {
                        workspace_id: None,
                        action: "session.logout",
                        resource_type: "user",
                        resource_id: Some(user_id),
                        metadata: json!({ "family": family_id }),
                    },
                )
                .await?;
            }
            Ok::<_, AppError>(Some((user_id, family_id)))
        })
        .await?;
    if let Some((user_id, family_id)) = session {
        ended(app, user_id, Some(family_id)).await;
    }
    Ok(())
}

/// Revokes every refresh token of a user (after a password reset).
pub(crate) async fn revoke_all(conn: &mut AsyncPgConnection, user_id: Uuid) -> AppResult<usize> {
    Ok(diesel::update(refresh_tokens::table)
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .set(refresh_tokens::revoked_at.eq(Utc::now()))
        .execute(conn)
        .await?)
}

/// Whether the session (refresh-token family) `session_id` of `user_id` still stands: one
/// of its tokens is neither revoked nor expired, and the account is active.
pub async fn is_live(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    session_id: Uuid,
) -> AppResult<bool> {
    let found: Option<Uuid> = refresh_tokens::table
        .inner_join(users::table)
        .filter(refresh_tokens::family_id.eq(session_id))
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(Utc::now()))
        .filter(users::is_active.eq(true))
        .select(refresh_tokens::id)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}
