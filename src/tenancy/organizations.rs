//! Creating organizations, teams and workspaces.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_organization, authorize_team};
use crate::auth::{Action, Actor, ClientInfo, Role};
use crate::db::models::{Organization, Team, Workspace};
use crate::db::schema::{organizations, team_members, teams, workspaces};
use crate::error::{AppError, AppResult};
use crate::validate;

/// The first team of a new organization.
const FIRST_TEAM: &str = "General";
/// The first workspace of a new organization.
const FIRST_WORKSPACE: &str = "Default workspace";

async fn insert_team(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    name: &str,
    owner: Uuid,
) -> AppResult<Team> {
    let team: Team = diesel::insert_into(teams::table)
        .values((
            teams::organization_id.eq(organization_id),
            teams::name.eq(name),
        ))
        .returning(Team::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(team_members::table)
        .values((
            team_members::team_id.eq(team.id),
            team_members::user_id.eq(owner),
            team_members::role.eq(Role::Owner.as_str()),
        ))
        .execute(conn)
        .await?;
    Ok(team)
}

async fn insert_workspace(
    conn: &mut AsyncPgConnection,
    team_id: Uuid,
    name: &str,
    creator: Uuid,
) -> AppResult<Workspace> {
    Ok(diesel::insert_into(workspaces::table)
        .values((
            workspaces::team_id.eq(team_id),
            workspaces::name.eq(name),
            workspaces::created_by.eq(creator),
        ))
        .returning(Workspace::as_returning())
        .get_result(conn)
        .await?)
}

/// Creates an organization with a first team and workspace; the caller owns both.
pub async fn create_organization(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    name: &str,
) -> AppResult<Organization> {
    let user_id = actor.user_id()?;
    let name = validate::name("name", name, 255)?;
    conn.transaction(async |conn| {
        let organization: Organization = diesel::insert_into(organizations::table)
            .values((
                organizations::name.eq(&name),
                organizations::created_by.eq(user_id),
            ))
            .returning(Organization::as_returning())
            .get_result(conn)
            .await?;
        let team = insert_team(conn, organization.id, FIRST_TEAM, user_id).await?;
        let workspace = insert_workspace(conn, team.id, FIRST_WORKSPACE, user_id).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace.id),
                action: "organization.create",
                resource_type: "organization",
                resource_id: Some(organization.id),
                metadata: json!({ "name": name, "teamId": team.id, "workspaceId": workspace.id }),
            },
        )
        .await?;
        Ok::<_, AppError>(organization)
    })
    .await
}

/// Creates a team in an organization where the caller is OWNER or ADMIN of some team; the
/// caller owns the new team.
pub async fn create_team(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    organization_id: Uuid,
    name: &str,
) -> AppResult<Team> {
    let user_id = actor.user_id()?;
    let name = validate::name("name", name, 255)?;
    conn.transaction(async |conn| {
        authorize_organization(conn, actor, organization_id, Action::ManageMembers).await?;
        let team = insert_team(conn, organization_id, &name, user_id).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: None,
                action: "team.create",
                resource_type: "team",
                resource_id: Some(team.id),
                metadata: json!({ "name": name, "organizationId": organization_id }),
            },
        )
        .await?;
        Ok::<_, AppError>(team)
    })
    .await
}

/// Creates a workspace in a team where the caller is OWNER or ADMIN.
pub async fn create_workspace(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    team_id: Uuid,
    name: &str,
) -> AppResult<Workspace> {
    let user_id = actor.user_id()?;
    let name = validate::name("name", name, 255)?;
    conn.transaction(async |conn| {
        authorize_team(conn, actor, team_id, Action::ManageMembers).await?;
        let workspace = insert_workspace(conn, team_id, &name, user_id).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace.id),
                action: "workspace.create",
                resource_type: "workspace",
                resource_id: Some(workspace.id),
                metadata: json!({ "name": name, "teamId": team_id }),
            },
        )
        .await?;
        Ok::<_, AppError>(workspace)
    })
    .await
}
