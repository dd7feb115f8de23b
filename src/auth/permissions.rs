//! Authorization in one place: roles, what each role may do, and the questions "which
//! workspaces can this actor see" and "what may it do in this one".
//!
//! Membership is per team (`team_members.role`) and reaches every workspace of the team.
//! A workspace the actor cannot see is NOT_FOUND, exactly like one that does not exist; one
//! it can see but not act on in the asked way is FORBIDDEN. The permission table is in
//! ARCHITECTURE.md and tested below.

use async_graphql::Enum;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Actor;
use crate::db::schema::{team_members, teams, workspaces};
use crate::error::{AppError, AppResult};

/// A member's role in a team (and so in each of its workspaces).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[graphql(name = "TeamRole")]
pub enum Role {
    Member,
    Editor,
    Admin,
    Owner,
}

/// What an actor may want to do in a workspace or team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See the workspace and everything in it.
    Read,
    /// Run workflows and try applications.
    Run,
    /// Create and change workflows, applications, datasets, prompts, plugins.
    Build,
    /// Invite, remove and change the roles of members; create workspaces in the team.
    ManageMembers,
    /// Configure model providers and their keys.
    ManageProviders,
    /// Create and revoke application API keys.
    ManageApiKeys,
    /// Read the audit log.
    ReadAuditLog,
}

impl Role {
    /// The permission table.
    pub fn may(self, action: Action) -> bool {
        match action {
            Action::Read | Action::Run => true,
            Action::Build => self >= Role::Editor,
            Action::ManageMembers
            | Action::ManageProviders
            | Action::ManageApiKeys
            | Action::ReadAuditLog => self >= Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Editor => "EDITOR",
            Role::Member => "MEMBER",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "OWNER" => Some(Role::Owner),
            "ADMIN" => Some(Role::Admin),
            "EDITOR" => Some(Role::Editor),
            "MEMBER" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The ids of the workspaces `user_id` can see, as a subquery to filter lookups by in SQL:
/// `.filter(things::workspace_id.eq_any(visible_workspace_ids(user_id)))`. (On `workspaces`
/// itself, filter `team_id` by `member_team_ids`.)
#[diesel::dsl::auto_type]
pub fn visible_workspace_ids(user_id: Uuid) -> _ {
    workspaces::table
        .filter(
            workspaces::team_id.eq_any(
                team_members::table
                    .filter(team_members::user_id.eq(user_id))
                    .select(team_members::team_id),
            ),
        )
        .select(workspaces::id)
}

/// The ids of the teams `user_id` belongs to, as a subquery.
#[diesel::dsl::auto_type]
pub fn member_team_ids(user_id: Uuid) -> _ {
    team_members::table
        .filter(team_members::user_id.eq(user_id))
        .select(team_members::team_id)
}

fn parse_role(text: String) -> AppResult<Role> {
    Role::parse(&text)
        .ok_or_else(|| AppError::internal(format!("unknown role {text:?} in database")))
}

/// The actor's role in a team, or `None` when it is not a member.
pub async fn team_role(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    team_id: Uuid,
) -> AppResult<Option<Role>> {
    let user_id = actor.user_id()?;
    let role: Option<String> = team_members::table
        .filter(team_members::team_id.eq(team_id))
        .filter(team_members::user_id.eq(user_id))
        .select(team_members::role)
        .first(conn)
        .await
        .optional()?;
    role.map(parse_role).transpose()
}

/// The actor's role in a workspace, or `None` when it cannot see it.
pub async fn workspace_role(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workspace_id: Uuid,
) -> AppResult<Option<Role>> {
    let user_id = actor.user_id()?;
    let role: Option<String> = workspaces::table
        .inner_join(team_members::table.on(team_members::team_id.eq(workspaces::team_id)))
        .filter(workspaces::id.eq(workspace_id))
        .filter(team_members::user_id.eq(user_id))
        .select(team_members::role)
        .first(conn)
        .await
        .optional()?;
    role.map(parse_role).transpose()
}

/// The actor's highest role in any team of an organization, or `None` when it has none.
pub async fn organization_role(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    organization_id: Uuid,
) -> AppResult<Option<Role>> {
    let user_id = actor.user_id()?;
    let roles: Vec<String> = team_members::table
        .inner_join(teams::table)
        .filter(teams::organization_id.eq(organization_id))
        .filter(team_members::user_id.eq(user_id))
        .select(team_members::role)
        .load(conn)
        .await?;
    Ok(roles.into_iter().filter_map(|r| Role::parse(&r)).max())
}

/// Checks that the actor may do `action` in the workspace: NOT_FOUND when it cannot see it,
/// FORBIDDEN when its role does not allow the action. Returns the role.
pub async fn authorize_workspace(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workspace_id: Uuid,
    action: Action,
) -> AppResult<Role> {
    allow(
        workspace_role(conn, actor, workspace_id).await?,
        action,
        "workspace",
    )
}

/// The same for a team.
pub async fn authorize_team(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    team_id: Uuid,
    action: Action,
) -> AppResult<Role> {
    allow(team_role(conn, actor, team_id).await?, action, "team")
}

/// The same for an organization, by the actor's highest role in its teams.
pub async fn authorize_organization(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    organization_id: Uuid,
    action: Action,
) -> AppResult<Role> {
    allow(
        organization_role(conn, actor, organization_id).await?,
        action,
        "organization",
    )
}

fn allow(role: Option<Role>, action: Action, what: &'static str) -> AppResult<Role> {
    match role {
        None => Err(AppError::NotFound(what)),
        Some(role) if role.may(action) => Ok(role),
        Some(_) => Err(AppError::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of ARCHITECTURE.md, row by row.
    #[test]
    fn permission_table() {
        use Action::*;
        let table = [
            (Read, [true, true, true, true]),
            (Run, [true, true, true, true]),
            (Build, [false, true, true, true]),
            (ManageMembers, [false, false, true, true]),
            (ManageProviders, [false, false, true, true]),
            (ManageApiKeys, [false, false, true, true]),
            (ReadAuditLog, [false, false, true, true]),
        ];
        for (action, allowed) in table {
            for (role, expected) in [Role::Member, Role::Editor, Role::Admin, Role::Owner]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(role.may(action), expected, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn unseen_is_not_found_and_disallowed_is_forbidden() {
        assert!(matches!(
            allow(None, Action::Read, "workspace"),
            Err(AppError::NotFound(_))
        ));
        assert!(matches!(
            allow(Some(Role::Member), Action::Build, "workspace"),
            Err(AppError::Forbidden)
        ));
        assert_eq!(
            allow(Some(Role::Editor), Action::Build, "workspace").unwrap(),
            Role::Editor
        );
    }
}
