//! Organizations, teams, workspaces, members and invitations in GraphQL.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::analytics::{StatsInterval, WorkspaceUsageBucketObject, range, workspace_usage};
use super::application::{ApplicationFilter, ApplicationObject, workspace_applications};
use super::audit::{AuditLogFilter, AuditLogObject, workspace_audit_logs};
use super::context::{ContextExt, conn};
use super::conversation::{
    AskedConversations, ConversationFilter, ConversationObject, EndUserFilter, EndUserObject,
    asked_conversations, conversations_of, workspace_end_users,
};
use super::dataset::{DatasetFilter, DatasetObject, workspace_datasets};
use super::execution::{ExecutionFilter, ExecutionRecordObject, executions_of};
use super::file::{FileFilter, FileObject, workspace_files};
use super::lists::ListName;
use super::loaders::*;
use super::pagination::{Conn, PageArgs};
use super::plain::Plain;
use super::plugin::{InstalledPluginFilter, InstalledPluginObject, workspace_installed_plugins};
use super::prompt::{PromptTemplateFilter, PromptTemplateObject, workspace_prompt_templates};
use super::provider::LlmProviderObject;
use super::workflow::{WorkflowFilter, WorkflowObject, workspace_workflows};
use crate::app::App;
use crate::auth::Role;
use crate::db::models::{Organization, Team, TeamInvitation, TeamMember, Workspace};
use crate::error::AppError;
use crate::realtime::events::Event;
use crate::tenancy;

fn role(text: &str) -> Result<Role> {
    Ok(Role::parse(text).ok_or_else(|| AppError::internal(format!("unknown role {text:?}")))?)
}

pub struct OrganizationObject(pub Organization);

#[Object(name = "Organization")]
impl OrganizationObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The caller's highest role in the organization's teams.
    async fn my_role(&self, ctx: &Context<'_>) -> Result<Role> {
        let found = ctx
            .loader()?
            .load_one(ViewerRoleInOrganization(self.0.id))
            .await?;
        Ok(found.ok_or(AppError::NotFound("organization"))?)
    }
    /// The organization's teams the caller belongs to.
    async fn teams(&self, ctx: &Context<'_>) -> Result<Vec<TeamObject>> {
        let found = ctx
            .loader()?
            .load_one(TeamsOfOrganization(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(TeamObject)
            .collect())
    }
}

pub struct TeamObject(pub Team);

#[Object(name = "Team")]
impl TeamObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<OrganizationObject> {
        let found = ctx
            .loader()?
            .load_one(OrganizationById(self.0.organization_id))
            .await?;
        Ok(OrganizationObject(
            found.ok_or(AppError::NotFound("organization"))?,
        ))
    }
    /// The caller's role in this team (and its workspaces).
    async fn my_role(&self, ctx: &Context<'_>) -> Result<Role> {
        let found = ctx.loader()?.load_one(ViewerRoleInTeam(self.0.id)).await?;
        Ok(found.ok_or(AppError::NotFound("team"))?)
    }
    async fn workspaces(&self, ctx: &Context<'_>) -> Result<Vec<WorkspaceObject>> {
        let found = ctx.loader()?.load_one(WorkspacesOfTeam(self.0.id)).await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(WorkspaceObject)
            .collect())
    }
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<TeamMemberObject>> {
        let found = ctx.loader()?.load_one(MembersOfTeam(self.0.id)).await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(TeamMemberObject)
            .collect())
    }
    /// Invitations not accepted yet; empty unless the caller is OWNER or ADMIN of the team.
    async fn pending_invitations(&self, ctx: &Context<'_>) -> Result<Vec<TeamInvitationObject>> {
        let found = ctx
            .loader()?
            .load_one(PendingInvitationsOfTeam(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(TeamInvitationObject)
            .collect())
    }
}

/// The unit of isolation: everything builders make lives in a workspace.
pub struct WorkspaceObject(pub Workspace);

#[Object(name = "Workspace")]
impl WorkspaceObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn team(&self, ctx: &Context<'_>) -> Result<TeamObject> {
        let found = ctx.loader()?.load_one(TeamById(self.0.team_id)).await?;
        Ok(TeamObject(found.ok_or(AppError::NotFound("team"))?))
    }
    /// Runs, tokens per model and active end users per hour, day or week from `from` to `to`
    /// in `timeZone` (IANA): one bucket per interval, at most 1,000. Builders (MEMBER and up).
    #[graphql(complexity = "50")]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "Some(StatsInterval::Day)")] interval: Option<StatsInterval>,
        #[graphql(default_with = "Some(\"UTC\".to_string())")] time_zone: Option<String>,
    ) -> Result<Vec<WorkspaceUsageBucketObject>> {
        workspace_usage(ctx, self.0.id, range(from, to, interval, time_zone)).await
    }
    /// Runs of every workflow here, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ExecutionFilter>,
    ) -> Result<Conn<ExecutionRecordObject>> {
        executions_of(
            ctx,
            ListName::WorkspaceExecutions,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The workspace's workflows, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn workflows(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<WorkflowFilter>,
    ) -> Result<Conn<WorkflowObject>> {
        workspace_workflows(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The workspace's applications, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn applications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ApplicationFilter>,
    ) -> Result<Conn<ApplicationObject>> {
        workspace_applications(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// Conversations of every application here, most recently active first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ConversationFilter>,
    ) -> Result<Conn<Plain<ConversationObject>>> {
        let args = PageArgs::new(first, after, last, before);
        conversations_of(
            ctx,
            ListName::WorkspaceConversations,
            self.0.id,
            args,
            filter,
        )
        .await
    }
    /// The end users of the workspace's applications, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn end_users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<EndUserFilter>,
    ) -> Result<Conn<EndUserObject>> {
        workspace_end_users(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The workspace's MCP servers, by name.
    async fn mcp_servers(&self, ctx: &Context<'_>) -> Result<Vec<super::mcp::McpServerObject>> {
        let found = ctx
            .loader()?
            .load_one(McpServersOfWorkspace(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(super::mcp::McpServerObject)
            .collect())
    }
    /// The workspace's model providers, by name.
    async fn llm_providers(&self, ctx: &Context<'_>) -> Result<Vec<LlmProviderObject>> {
        let found = ctx
            .loader()?
            .load_one(ProvidersOfWorkspace(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(LlmProviderObject)
            .collect())
    }
    /// Every change made here, newest first (OWNER and ADMIN).
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditLogFilter>,
    ) -> Result<Conn<AuditLogObject>> {
        workspace_audit_logs(
            ctx,
            &self.0,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The workspace's prompt templates, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn prompt_templates(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<PromptTemplateFilter>,
    ) -> Result<Conn<PromptTemplateObject>> {
        workspace_prompt_templates(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The workspace's datasets, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn datasets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<DatasetFilter>,
    ) -> Result<Conn<DatasetObject>> {
        workspace_datasets(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The plugins installed here, most recently installed first.
    /// Uploaded files, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn files(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<FileFilter>,
    ) -> Result<Conn<FileObject>> {
        workspace_files(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn installed_plugins(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InstalledPluginFilter>,
    ) -> Result<Conn<InstalledPluginObject>> {
        workspace_installed_plugins(
            ctx,
            self.0.id,
            PageArgs::new(first, after, last, before),
            filter,
        )
        .await
    }
    /// The caller's role here (its role in the workspace's team).
    async fn my_role(&self, ctx: &Context<'_>) -> Result<Role> {
        let found = ctx
            .loader()?
            .load_one(ViewerRoleInTeam(self.0.team_id))
            .await?;
        Ok(found.ok_or(AppError::NotFound("workspace"))?)
    }
}

/// What team mates see of a user.
#[derive(SimpleObject)]
#[graphql(name = "UserProfile")]
pub struct UserProfileObject {
    id: Uuid,
    name: String,
    email: String,
    avatar_url: Option<String>,
}

impl From<UserProfile> for UserProfileObject {
    fn from(u: UserProfile) -> Self {
        UserProfileObject {
            id: u.id,
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
        }
    }
}

pub struct TeamMemberObject(pub TeamMember);

#[Object(name = "TeamMember")]
impl TeamMemberObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn role(&self) -> Result<Role> {
        role(&self.0.role)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<UserProfileObject> {
        let found = ctx
            .loader()?
            .load_one(UserProfileById(self.0.user_id))
            .await?;
        Ok(found.ok_or(AppError::NotFound("user"))?.into())
    }
    async fn team(&self, ctx: &Context<'_>) -> Result<TeamObject> {
        let found = ctx.loader()?.load_one(TeamById(self.0.team_id)).await?;
        Ok(TeamObject(found.ok_or(AppError::NotFound("team"))?))
    }
}

pub struct TeamInvitationObject(pub TeamInvitation);

#[Object(name = "TeamInvitation")]
impl TeamInvitationObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> Result<Role> {
        role(&self.0.role)
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.0.accepted_at
    }
    /// When it was withdrawn (`revokeInvitation`, or its inviter leaving the team).
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn team(&self, ctx: &Context<'_>) -> Result<TeamObject> {
        let found = ctx.loader()?.load_one(TeamById(self.0.team_id)).await?;
        Ok(TeamObject(found.ok_or(AppError::NotFound("team"))?))
    }
    async fn invited_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.invited_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
}

/// An invitation and its token, shown only here.
#[derive(SimpleObject)]
pub struct TeamInvitationPayload {
    invitation: TeamInvitationObject,
    /// Give it to the invitee: `acceptInvitation(token:)`. It is not stored and cannot be shown again.
    token: String,
}

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    name: String,
}

#[derive(InputObject)]
pub struct CreateTeamInput {
    organization_id: Uuid,
    name: String,
}

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    team_id: Uuid,
    name: String,
}

#[derive(InputObject)]
pub struct InviteTeamMemberInput {
    team_id: Uuid,
    email: String,
    role: Role,
}

#[derive(InputObject)]
pub struct UpdateTeamMemberRoleInput {
    team_id: Uuid,
    user_id: Uuid,
    role: Role,
}

#[derive(InputObject)]
pub struct RemoveTeamMemberInput {
    team_id: Uuid,
    user_id: Uuid,
}

#[derive(Default)]
pub struct TenancyQuery;

#[Object]
impl TenancyQuery {
    /// A workspace the caller can see, or null.
    async fn workspace(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<WorkspaceObject>> {
        ctx.actor()?;
        let loader = ctx.loader()?;
        // A page of its conversations asked for with it (and their total) is read in the
        // same statement.
        let db = loader.loader();
        let workspace = match asked_conversations(&ctx.field(), id) {
            Some((AskedConversations::Plain(page), count)) => {
                db.workspace_with_page(page, count).await?
            }
            Some((AskedConversations::WithEndUser(page), count)) => {
                db.workspace_with_page(page, count).await?
            }
            Some((AskedConversations::BriefWithEndUser(page), count)) => {
                db.workspace_with_page(page, count).await?
            }
            None => loader.load_one(WorkspaceById(id)).await?,
        };
        Ok(workspace.map(WorkspaceObject))
    }
}

#[derive(Default)]
pub struct TenancyMutation;

#[Object]
impl TenancyMutation {
    /// Creates an organization with a first team ("General") and workspace; the caller owns them.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<OrganizationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let org =
            tenancy::create_organization(&mut conn, actor, &ctx.client(), &input.name).await?;
        Ok(OrganizationObject(org))
    }

    /// Creates a team; the caller must be OWNER or ADMIN in the organization and owns the team.
    async fn create_team(&self, ctx: &Context<'_>, input: CreateTeamInput) -> Result<TeamObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let team = tenancy::create_team(
            &mut conn,
            actor,
            &ctx.client(),
            input.organization_id,
            &input.name,
        )
        .await?;
        Ok(TeamObject(team))
    }

    /// Creates a workspace in a team the caller is OWNER or ADMIN of.
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkspaceInput,
    ) -> Result<WorkspaceObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workspace =
            tenancy::create_workspace(&mut conn, actor, &ctx.client(), input.team_id, &input.name)
                .await?;
        Ok(WorkspaceObject(workspace))
    }

    /// Invites an email to a team; the token is shown once.
    async fn invite_team_member(
        &self,
        ctx: &Context<'_>,
        input: InviteTeamMemberInput,
    ) -> Result<TeamInvitationPayload> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let (invitation, token) = tenancy::invite_team_member(
            &mut conn,
            actor,
            &ctx.client(),
            input.team_id,
            &input.email,
            input.role,
        )
        .await?;
        Ok(TeamInvitationPayload {
            invitation: TeamInvitationObject(invitation),
            token,
        })
    }

    /// Joins the team of an invitation addressed to the caller's email.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> Result<TeamMemberObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let member = tenancy::accept_invitation(&mut conn, actor, &ctx.client(), &token).await?;
        Ok(TeamMemberObject(member))
    }

    /// Withdraws an invitation not accepted yet (OWNER or ADMIN of its team): its token
    /// stops working.
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: Uuid) -> Result<TeamInvitationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let invitation = tenancy::revoke_invitation(&mut conn, actor, &ctx.client(), id).await?;
        Ok(TeamInvitationObject(invitation))
    }

    /// Changes a member's role; a team keeps at least one OWNER.
    async fn update_team_member_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateTeamMemberRoleInput,
    ) -> Result<TeamMemberObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let member = tenancy::update_team_member_role(
            &mut conn,
            actor,
            &ctx.client(),
            input.team_id,
            input.user_id,
            input.role,
        )
        .await?;
        membership_changed(app, input.team_id, input.user_id).await;
        Ok(TeamMemberObject(member))
    }

    /// Removes a member (or the caller leaves); the last OWNER cannot be removed.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveTeamMemberInput,
    ) -> Result<bool> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        tenancy::remove_team_member(
            &mut conn,
            actor,
            &ctx.client(),
            input.team_id,
            input.user_id,
        )
        .await?;
        membership_changed(app, input.team_id, input.user_id).await;
        Ok(true)
    }
}

/// Tells the member's live subscriptions, on every instance, to check what they may still see.
async fn membership_changed(app: &App, team_id: Uuid, user_id: Uuid) {
    app.realtime
        .rights_changed(Event::MembershipChanged { team_id, user_id })
        .await;
}
