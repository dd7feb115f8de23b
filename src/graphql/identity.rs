//! Accounts in GraphQL: `me`, registration, login, sessions, password reset.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::tenancy::{OrganizationObject, TeamObject, WorkspaceObject};
use crate::auth::permissions::member_team_ids;
use crate::db::models::{self, Organization, Team, Workspace};
use crate::db::schema::{organizations, teams, users, workspaces};
use crate::error::AppError;
use crate::identity::{self, Session, accounts};

/// A tenant user: builders and admins. Reached as `me`.
pub struct UserObject(pub models::User);

#[Object(name = "User")]
impl UserObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    async fn language(&self) -> &str {
        &self.0.language
    }
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The organizations this user belongs to through a team, oldest first.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<OrganizationObject>> {
        let mut conn = conn(ctx.app()?).await?;
        let rows: Vec<Organization> = organizations::table
            .filter(
                organizations::id.eq_any(
                    teams::table
                        .filter(teams::id.eq_any(member_team_ids(self.0.id)))
                        .select(teams::organization_id),
                ),
            )
            .order((organizations::created_at.asc(), organizations::id.asc()))
            .select(Organization::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(OrganizationObject).collect())
    }

    /// The teams this user is a member of, oldest first.
    async fn teams(&self, ctx: &Context<'_>) -> Result<Vec<TeamObject>> {
        let mut conn = conn(ctx.app()?).await?;
        let rows: Vec<Team> = teams::table
            .filter(teams::id.eq_any(member_team_ids(self.0.id)))
            .order((teams::created_at.asc(), teams::id.asc()))
            .select(Team::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(TeamObject).collect())
    }

    /// Every workspace this user can see, oldest first.
    async fn workspaces(&self, ctx: &Context<'_>) -> Result<Vec<WorkspaceObject>> {
        let mut conn = conn(ctx.app()?).await?;
        let rows: Vec<Workspace> = workspaces::table
            .filter(workspaces::team_id.eq_any(member_team_ids(self.0.id)))
            .order((workspaces::created_at.asc(), workspaces::id.asc()))
            .select(Workspace::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(WorkspaceObject).collect())
    }
}

/// A new session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT for `Authorization: Bearer ...`, valid 15 minutes.
    access_token: String,
    access_token_expires_at: DateTime<Utc>,
    /// Opaque, valid 30 days, single use: `refreshToken` returns a new one.
    refresh_token: String,
    user: UserObject,
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        AuthPayload {
            access_token: s.access_token,
            access_token_expires_at: s.access_token_expires_at,
            refresh_token: s.refresh_token,
            user: UserObject(s.user),
        }
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    email: String,
    password: String,
    name: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    email: String,
    password: String,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    token: String,
    new_password: String,
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The caller, with their organizations, teams and workspaces.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserObject> {
        let user_id = ctx.actor()?.user_id()?;
        let mut conn = conn(ctx.app()?).await?;
        let user: Option<models::User> = users::table
            .find(user_id)
            .filter(users::is_active.eq(true))
            .select(models::User::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(AppError::from)?;
        Ok(UserObject(user.ok_or(AppError::Unauthenticated)?))
    }
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// Creates an account and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let app = ctx.app()?;
        let input = accounts::RegisterInput {
            email: input.email,
            password: input.password,
            name: input.name,
        };
        Ok(identity::register(app, &ctx.client(), input).await?.into())
    }

    /// Signs in with email and password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let app = ctx.app()?;
        Ok(
            identity::login(app, &ctx.client(), &input.email, &input.password)
                .await?
                .into(),
        )
    }

    /// Exchanges a refresh token for a new session; the old token stops working.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        Ok(
            identity::refresh(app, &mut conn, &ctx.client(), &refresh_token)
                .await?
                .into(),
        )
    }

    /// Ends the session of a refresh token.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> Result<bool> {
        let mut conn = conn(ctx.app()?).await?;
        identity::logout(ctx.app()?, &mut conn, &ctx.client(), &refresh_token).await?;
        Ok(true)
    }

    /// Mails a reset link when the email has an account. Always true: the answer never
    /// reveals whether it has.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        identity::password_reset::request(app, &mut conn, &ctx.client(), &email).await?;
        Ok(true)
    }

    /// Sets a new password with a reset token; every session of the account ends.
    async fn reset_password(&self, ctx: &Context<'_>, input: ResetPasswordInput) -> Result<bool> {
        let app = ctx.app()?;
        identity::password_reset::reset(app, &ctx.client(), &input.token, &input.new_password)
            .await?;
        Ok(true)
    }
}
