//! Registration and login. Password hashing waits for its permit and runs without holding a
//! pooled connection, so a flood of sign-ins cannot take the database away from anyone else;
//! both are rate limited per client address (and login per email).

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::sessions::{self, Session};
use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::{Actor, ClientInfo, rate_limit};
use crate::db::models::User;
use crate::db::schema::users;
use crate::error::{AppError, AppResult};
use crate::validate;

pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser {
    email: String,
    name: String,
    password_hash: String,
}

/// Creates an account and opens its first session. A taken email is CONFLICT.
pub async fn register(app: &App, client: &ClientInfo, input: RegisterInput) -> AppResult<Session> {
    let email = validate::email("email", &input.email)?;
    validate::password("password", &input.password)?;
    let name = validate::name("name", &input.name, 255)?;
    app.auth
        .limiter
        .attempt(rate_limit::REGISTER, None, client.ip.as_deref())
        .await?;
    let password_hash = app.auth.hasher.hash(&input.password).await?;
    let mut conn = app.pool.get().await?;
    conn.transaction(async |conn| {
        let inserted: Option<User> = diesel::insert_into(users::table)
            .values(NewUser {
                email,
                name,
                password_hash,
            })
            .on_conflict_do_nothing()
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let user = inserted.ok_or_else(|| {
            AppError::Conflict("an account with this email already exists".into())
        })?;
        let user_id = user.id;
        let (session, _) = sessions::open(app, conn, user, Uuid::new_v4(), client).await?;
        audit::record(
            conn,
            Actor::User { user_id },
            client,
            AuditEntry {
                workspace_id: None,
                action: "user.register",
                resource_type: "user",
                resource_id: Some(user_id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok(session)
    })
    .await
}

/// Checks the password and opens a session. An unknown email, an inactive account and a
/// wrong password give the same answer after the same work; attempts are rate limited per
/// email and per client address, and a success gives its attempt back.
pub async fn login(
    app: &App,
    client: &ClientInfo,
    email: &str,
    password: &str,
) -> AppResult<Session> {
    let email = email.trim().to_lowercase();
    let ip = client.ip.as_deref();
    let rule = app.auth.limiter.login_rule();
    app.auth.limiter.attempt(rule, Some(&email), ip).await?;
    let user: Option<User> = {
        let mut conn = app.pool.get().await?;
        users::table
            .filter(users::email.eq(&email))
            .filter(users::is_active.eq(true))
            .select(User::as_select())
            .first(&mut conn)
            .await
            .optional()?
    };
    let matched = app
        .auth
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let Some(user) = user.filter(|_| matched) else {
        return Err(AppError::InvalidCredentials);
    };
    let mut conn = app.pool.get().await?;
    let session = conn
        .transaction(async |conn| {
            let user: User = diesel::update(users::table.find(user.id))
                .set(users::last_login_at.eq(Utc::now()))
                .returning(User::as_returning())
                .get_result(conn)
                .await?;
            let user_id = user.id;
            let (session, _) = sessions::open(app, conn, user, Uuid::new_v4(), client).await?;
            audit::record(
                conn,
                Actor::User { user_id },
                client,
                AuditEntry {
                    workspace_id: None,
                    action: "user.login",
                    resource_type: "user",
                    resource_id: Some(user_id),
                    metadata: json!({}),
                },
            )
            .await?;
            Ok::<_, AppError>(session)
        })
        .await?;
    app.auth.limiter.succeeded(rule, Some(&email), ip).await;
    Ok(session)
}
