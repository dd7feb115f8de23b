//! Password reset: a single-use token, stored hashed, valid one hour, delivered by mail.
//! Asking never reveals whether the email has an account; resetting revokes every session.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::sessions;
use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::tokens::{hash_token, new_opaque_token};
use crate::auth::{Actor, ClientInfo, rate_limit};
use crate::db::schema::{password_resets, users};
use crate::error::{AppError, AppResult};
use crate::validate;

/// How long a reset token is valid.
pub const RESET_TOKEN_TTL: Duration = Duration::hours(1);

#[derive(Insertable)]
#[diesel(table_name = password_resets)]
struct NewPasswordReset {
    user_id: Uuid,
    token_hash: String,
    expires_at: chrono::DateTime<Utc>,
}

/// Creates a reset token for the account of `email`, if there is an active one, and mails
/// the link. The mail is sent in the background so the answer takes the same time either way.
pub async fn request(
    app: &App,
    conn: &mut AsyncPgConnection,
    client: &ClientInfo,
    email: &str,
) -> AppResult<()> {
    let email = email.trim().to_lowercase();
    app.auth
        .limiter
        .attempt(
            rate_limit::RESET_REQUEST,
            Some(&email),
            client.ip.as_deref(),
        )
        .await?;
    let user: Option<(Uuid, String)> = users::table
        .filter(users::email.eq(&email))
        .filter(users::is_active.eq(true))
        .select((users::id, users::email))
        .first(conn)
        .await
        .optional()?;
    let Some((user_id, address)) = user else {
        return Ok(());
    };
    let token = new_opaque_token();
    conn.transaction(async |conn| {
        diesel::insert_into(password_resets::table)
            .values(NewPasswordReset {
                user_id,
                token_hash: hash_token(&token),
                expires_at: Utc::now() + RESET_TOKEN_TTL,
            })
            .execute(conn)
            .await?;
        audit::record(
            conn,
            Actor::User { user_id },
            client,
            AuditEntry {
                workspace_id: None,
                action: "user.password_reset_request",
                resource_type: "user",
                resource_id: Some(user_id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await?;
    let link = format!(
        "{}/reset-password?token={token}",
        app.config.public_url.trim_end_matches('/')
    );
    let mailer = app.mailer.clone();
    tokio::spawn(async move {
        let body = format!(
            "Someone asked to reset the password of your Weft account.\n\n\
             Open this link within an hour to choose a new one:\n{link}\n\n\
             If it was not you, ignore this message: your password stays as it is."
        );
        mailer
            .send(&address, "Reset your Weft password", body)
            .await;
    });
    Ok(())
}

/// Sets a new password with a reset token (once), and revokes every session of the account.
/// The token is checked before the new password is hashed, and no pooled connection is held
/// while it is.
pub async fn reset(
    app: &App,
    client: &ClientInfo,
    token: &str,
    new_password: &str,
) -> AppResult<()> {
    app.auth
        .limiter
        .attempt(rate_limit::RESET, None, client.ip.as_deref())
        .await?;
    validate::password("newPassword", new_password)?;
    let hash = hash_token(token);
    let invalid = || AppError::bad_input("token", "the reset token is invalid or expired");
    {
        let mut conn = app.pool.get().await?;
        let live: Option<Uuid> = password_resets::table
            .filter(password_resets::token_hash.eq(&hash))
            .filter(password_resets::used_at.is_null())
            .filter(password_resets::expires_at.gt(Utc::now()))
            .select(password_resets::id)
            .first(&mut conn)
            .await
            .optional()?;
        live.ok_or_else(invalid)?;
    }
    let password_hash = app.auth.hasher.hash(new_password).await?;
    let mut conn = app.pool.get().await?;
    let user_id = conn
        .transaction(async |conn| {
            let user_id: Option<Uuid> = diesel::update(password_resets::table)
                .filter(password_resets::token_hash.eq(&hash))
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(Utc::now()))
                .set(password_resets::used_at.eq(Utc::now()))
                .returning(password_resets::user_id)
                .get_result(conn)
                .await
                .optional()?;
            // Used or expired meanwhile: the UPDATE above is the one that counts.
            let user_id = user_id.ok_or_else(invalid)?;
            diesel::update(users::table.find(user_id))
                .set(users::password_hash.eq(&password_hash))
                .execute(conn)
                .await?;
            let revoked = sessions::revoke_all(conn, user_id).await?;
            audit::record(
                conn,
                Actor::User { user_id },
                client,
                AuditEntry {
                    workspace_id: None,
                    action: "user.password_reset",
                    resource_type: "user",
                    resource_id: Some(user_id),
                    metadata: json!({ "revokedSessions": revoked }),
                },
            )
            .await?;
            Ok::<_, AppError>(user_id)
        })
        .await?;
    drop(conn);
    sessions::ended(app, user_id, None).await;
    Ok(())
}
