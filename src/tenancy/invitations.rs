//! Invitations to a team: a token shown once, stored hashed, valid seven days, accepted
//! only by a user whose email is the invited one.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::authorize_team;
use crate::auth::tokens::{hash_token, new_opaque_token};
use crate::auth::{Action, Actor, ClientInfo, Role};
use crate::db::models::{TeamInvitation, TeamMember};
use crate::db::schema::{team_invitations, team_members, teams, users};
use crate::error::{AppError, AppResult};
use crate::validate;

/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::days(7);

#[derive(Insertable)]
#[diesel(table_name = team_invitations)]
struct NewInvitation {
    team_id: Uuid,
    email: String,
    role: &'static str,
    token_hash: String,
    expires_at: DateTime<Utc>,
    invited_by: Uuid,
}

/// Invites `email` to a team as `role` (OWNER and ADMIN may invite; only an OWNER may
/// invite another OWNER). Returns the invitation and its token, which is not kept.
pub async fn invite_team_member(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    team_id: Uuid,
    email: &str,
    role: Role,
) -> AppResult<(TeamInvitation, String)> {
    let user_id = actor.user_id()?;
    let email = validate::email("email", email)?;
    let token = new_opaque_token();
    conn.transaction(async |conn| {
        let my_role = authorize_team(conn, actor, team_id, Action::ManageMembers).await?;
        if role == Role::Owner && my_role != Role::Owner {
            return Err(AppError::Forbidden);
        }
        let already: i64 = team_members::table
            .inner_join(users::table)
            .filter(team_members::team_id.eq(team_id))
            .filter(users::email.eq(&email))
            .count()
            .get_result(conn)
            .await?;
        if already > 0 {
            return Err(AppError::Conflict(
                "this user is already a member of the team".into(),
            ));
        }
        let invitation: TeamInvitation = diesel::insert_into(team_invitations::table)
            .values(NewInvitation {
                team_id,
                email: email.clone(),
                role: role.as_str(),
                token_hash: hash_token(&token),
                expires_at: Utc::now() + INVITATION_TTL,
                invited_by: user_id,
            })
            .returning(TeamInvitation::as_returning())
            .get_result(conn)
            .await?;
        audit::record_for_team(
            conn,
            actor,
            client,
            team_id,
            AuditEntry {
                workspace_id: None,
                action: "team_invitation.create",
                resource_type: "team_invitation",
                resource_id: Some(invitation.id),
                metadata: json!({ "teamId": team_id, "role": role.as_str() }),
            },
        )
        .await?;
        Ok((invitation, token.clone()))
    })
    .await
}

/// Accepts an invitation: the caller joins the team with the invited role.
pub async fn accept_invitation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    token: &str,
) -> AppResult<TeamMember> {
    let user_id = actor.user_id()?;
    let hash = hash_token(token);
    conn.transaction(async |conn| {
        let my_email: String = users::table
            .find(user_id)
            .select(users::email)
            .first(conn)
            .await?;
        // Locked, so that two acceptances of one invitation cannot both pass.
        let invitation: TeamInvitation = team_invitations::table
            .filter(team_invitations::token_hash.eq(&hash))
            .filter(team_invitations::accepted_at.is_null())
            .filter(team_invitations::revoked_at.is_null())
            .filter(team_invitations::expires_at.gt(Utc::now()))
            .select(TeamInvitation::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("invitation"))?;
        if !invitation.email.eq_ignore_ascii_case(&my_email) {
            return Err(AppError::Forbidden);
        }
        let member: Option<TeamMember> = diesel::insert_into(team_members::table)
            .values((
                team_members::team_id.eq(invitation.team_id),
                team_members::user_id.eq(user_id),
                team_members::role.eq(&invitation.role),
            ))
            .on_conflict_do_nothing()
            .returning(TeamMember::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let member = member
            .ok_or_else(|| AppError::Conflict("you are already a member of this team".into()))?;
        diesel::update(team_invitations::table.find(invitation.id))
            .set((
                team_invitations::accepted_at.eq(Utc::now()),
                team_invitations::accepted_by.eq(user_id),
            ))
            .execute(conn)
            .await?;
        let organization_id: Uuid = teams::table
            .find(invitation.team_id)
            .select(teams::organization_id)
            .first(conn)
            .await?;
        audit::record_for_team(
            conn,
            actor,
            client,
            invitation.team_id,
            AuditEntry {
                workspace_id: None,
                action: "team_invitation.accept",
                resource_type: "team_member",
                resource_id: Some(member.id),
                metadata: json!({
                    "teamId": invitation.team_id,
                    "organizationId": organization_id,
                    "invitationId": invitation.id,
                }),
            },
        )
        .await?;
        Ok(member)
    })
    .await
}

/// Withdraws an invitation that was not accepted yet (OWNER or ADMIN of its team; an OWNER
/// invitation takes an OWNER). Withdrawing it again changes nothing.
pub async fn revoke_invitation(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    invitation_id: Uuid,
) -> AppResult<TeamInvitation> {
    let user_id = actor.user_id()?;
    conn.transaction(async |conn| {
        // Only invitations of teams the caller belongs to are found at all.
        let mine = team_members::table
            .filter(team_members::user_id.eq(user_id))
            .select(team_members::team_id);
        let invitation: TeamInvitation = team_invitations::table
            .find(invitation_id)
            .filter(team_invitations::team_id.eq_any(mine))
            .select(TeamInvitation::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("invitation"))?;
        let my_role =
            authorize_team(conn, actor, invitation.team_id, Action::ManageMembers).await?;
        if invitation.role == Role::Owner.as_str() && my_role != Role::Owner {
            return Err(AppError::Forbidden);
        }
        if invitation.accepted_at.is_some() {
            return Err(AppError::Conflict(
                "this invitation was accepted already; remove the member instead".into(),
            ));
        }
        if invitation.revoked_at.is_some() {
            return Ok(invitation);
        }
        let revoked: TeamInvitation = diesel::update(team_invitations::table.find(invitation.id))
            .set(team_invitations::revoked_at.eq(Utc::now()))
            .returning(TeamInvitation::as_returning())
            .get_result(conn)
            .await?;
        audit::record_for_team(
            conn,
            actor,
            client,
            revoked.team_id,
            AuditEntry {
                workspace_id: None,
                action: "team_invitation.revoke",
                resource_type: "team_invitation",
                resource_id: Some(revoked.id),
                metadata: json!({ "teamId": revoked.team_id, "role": revoked.role }),
            },
        )
        .await?;
        Ok(revoked)
    })
    .await
}
