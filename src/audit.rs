//! The audit trail: every mutation that changes data writes one `audit_logs` row in its own
//! transaction, so a failed mutation leaves none.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{Actor, ClientInfo};
use crate::db::schema::{audit_logs, workspaces};
use crate::db::statement::KeepPrepared;
use crate::error::AppResult;
use crate::validate::truncate;

/// What happened, to what.
pub struct AuditEntry<'a> {
    pub workspace_id: Option<Uuid>,
    /// `<resource>.<verb>`, e.g. `team.create`.
    pub action: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<Uuid>,
    pub metadata: Value,
}

#[derive(Insertable)]
#[diesel(table_name = audit_logs)]
struct NewAuditLog {
    workspace_id: Option<Uuid>,
    actor_type: &'static str,
    actor_user_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: String,
    resource_type: String,
    resource_id: Option<Uuid>,
    metadata: Value,
    ip: Option<String>,
    user_agent: Option<String>,
}

/// Writes one row. Call it inside the mutation's transaction.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    entry: AuditEntry<'_>,
) -> AppResult<()> {
    let (actor_type, actor_user_id, actor_api_key_id) = match actor {
        Actor::User { user_id } => ("USER", Some(user_id), None),
        Actor::ApiKey { key_id, .. } => ("API_KEY", None, Some(key_id)),
        // The key its token was minted with; the end user goes in the metadata.
        Actor::EndUser { key_id, .. } => ("END_USER", None, Some(key_id)),
    };
    let mut metadata = entry.metadata;
    if let (Actor::EndUser { end_user_id, .. }, Some(object)) = (actor, metadata.as_object_mut()) {
        object.insert("endUserId".into(), Value::String(end_user_id.to_string()));
    }
    diesel::insert_into(audit_logs::table)
        .values(NewAuditLog {
            workspace_id: entry.workspace_id,
            actor_type,
            actor_user_id,
            actor_api_key_id,
            action: entry.action.to_string(),
            resource_type: entry.resource_type.to_string(),
            resource_id: entry.resource_id,
            metadata,
            ip: client.ip.as_deref().map(|ip| truncate(ip, 64)),
            user_agent: client.user_agent.as_deref().map(|ua| truncate(ua, 500)),
        })
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes a change to a team (its members, its invitations) into the trail of each of its
/// workspaces, where `Workspace.auditLogs` shows it; a team without workspaces gets one row
/// with none. Call it inside the mutation's transaction.
pub async fn record_for_team(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    team_id: Uuid,
    entry: AuditEntry<'_>,
) -> AppResult<()> {
    let workspaces: Vec<Uuid> = workspaces::table
        .filter(workspaces::team_id.eq(team_id))
        .select(workspaces::id)
        .load(conn)
        .await?;
    if workspaces.is_empty() {
        return record(conn, actor, client, entry).await;
    }
    for workspace_id in workspaces {
        let entry = AuditEntry {
            workspace_id: Some(workspace_id),
            action: entry.action,
            resource_type: entry.resource_type,
            resource_id: entry.resource_id,
            metadata: entry.metadata.clone(),
        };
        record(conn, actor, client, entry).await?;
    }
    Ok(())
}
