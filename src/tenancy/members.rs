//! Changing roles and removing members. A team always keeps at least one OWNER; only an
//! OWNER may make or unmake an OWNER.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_team, team_role};
use crate::auth::{Action, Actor, ClientInfo, Role};
use crate::db::models::TeamMember;
use crate::db::schema::{team_invitations, team_members};
use crate::error::{AppError, AppResult};

/// The team's members, locked for the rest of the transaction so that concurrent changes
/// cannot together remove the last owner.
async fn lock_members(conn: &mut AsyncPgConnection, team_id: Uuid) -> AppResult<Vec<TeamMember>> {
    Ok(team_members::table
        .filter(team_members::team_id.eq(team_id))
        .select(TeamMember::as_select())
        .for_update()
        .load(conn)
        .await?)
}

fn role_of(member: &TeamMember) -> AppResult<Role> {
    Role::parse(&member.role)
        .ok_or_else(|| AppError::internal(format!("unknown role {:?}", member.role)))
}

fn owners(members: &[TeamMember]) -> usize {
    members
        .iter()
        .filter(|m| m.role == Role::Owner.as_str())
        .count()
}

/// Changes a member's role.
pub async fn update_team_member_role(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    team_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> AppResult<TeamMember> {
    conn.transaction(async |conn| {
        let my_role = authorize_team(conn, actor, team_id, Action::ManageMembers).await?;
        let members = lock_members(conn, team_id).await?;
        let target = members
            .iter()
            .find(|m| m.user_id == user_id)
            .ok_or(AppError::NotFound("team member"))?;
        let current = role_of(target)?;
        if (current == Role::Owner || role == Role::Owner) && my_role != Role::Owner {
            return Err(AppError::Forbidden);
        }
        if current == Role::Owner && role != Role::Owner && owners(&members) == 1 {
            return Err(AppError::Conflict("the last owner of a team cannot be demoted".into()));
        }
        let updated: TeamMember = diesel::update(team_members::table.find(target.id))
            .set(team_members::role.eq(role.as_str()))
            .returning(TeamMember::as_returning())
            .get_result(conn)
            .await?;
        audit::record_for_team(
            conn,
            actor,
            client,
            team_id,
            AuditEntry {
                workspace_id: None,
                action: "team_member.update_role",
                resource_type: "team_member",
                resource_id: Some(updated.id),
                metadata: json!({ "teamId": team_id, "userId": user_id, "from": current.as_str(), "to": role.as_str() }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Removes a member, and revokes the invitations they sent that are still pending. Anyone
/// may leave a team; removing someone else takes OWNER or ADMIN, and removing an OWNER
/// takes an OWNER.
pub async fn remove_team_member(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    team_id: Uuid,
    user_id: Uuid,
) -> AppResult<()> {
    let me = actor.user_id()?;
    conn.transaction(async |conn| {
        let my_role = if me == user_id {
            team_role(conn, actor, team_id)
                .await?
                .ok_or(AppError::NotFound("team"))?
        } else {
            authorize_team(conn, actor, team_id, Action::ManageMembers).await?
        };
        let members = lock_members(conn, team_id).await?;
        let target = members
            .iter()
            .find(|m| m.user_id == user_id)
            .ok_or(AppError::NotFound("team member"))?;
        let role = role_of(target)?;
        if role == Role::Owner && my_role != Role::Owner {
            return Err(AppError::Forbidden);
        }
        if role == Role::Owner && owners(&members) == 1 {
            return Err(AppError::Conflict(
                "the last owner of a team cannot be removed".into(),
            ));
        }
        diesel::delete(team_members::table.find(target.id))
            .execute(conn)
            .await?;
        // What they invited and was not accepted yet goes with them.
        let withdrawn = diesel::update(team_invitations::table)
            .filter(team_invitations::team_id.eq(team_id))
            .filter(team_invitations::invited_by.eq(user_id))
            .filter(team_invitations::accepted_at.is_null())
            .filter(team_invitations::revoked_at.is_null())
            .set(team_invitations::revoked_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        audit::record_for_team(
            conn,
            actor,
            client,
            team_id,
            AuditEntry {
                workspace_id: None,
                action: "team_member.remove",
                resource_type: "team_member",
                resource_id: Some(target.id),
                metadata: json!({
                    "teamId": team_id,
                    "userId": user_id,
                    "role": role.as_str(),
                    "revokedInvitations": withdrawn,
                }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
