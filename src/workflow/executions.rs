//! Finding a workflow run for a caller: a builder sees the runs of its workspaces, an
//! application's API key the runs its application started.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Actor;
use crate::auth::permissions::visible_workspace_ids;
use crate::db::models::ExecutionRecord;
use crate::db::schema::execution_records;
use crate::error::{AppError, AppResult};

/// An execution the actor may see.
pub async fn visible_execution(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<ExecutionRecord> {
    let query = execution_records::table
        .find(id)
        .select(ExecutionRecord::as_select())
        .into_boxed();
    let query = match actor {
        Actor::User { user_id } => {
            query.filter(execution_records::workspace_id.eq_any(visible_workspace_ids(user_id)))
        }
        Actor::ApiKey {
            application_id,
            workspace_id,
            ..
        } => query
            .filter(execution_records::workspace_id.eq(workspace_id))
            .filter(execution_records::triggered_by_application_id.eq(application_id)),
        Actor::EndUser { .. } => return Err(AppError::NotFound("execution")),
    };
    query
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("execution"))
}

/// The runs of a workspace changed at or after `since`, oldest change first (at most
/// `limit`): what a `workspaceExecutions` subscriber may have missed while the bus was
/// away. The subscription checked the workspace; this reads it.
pub async fn changed_since(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> AppResult<Vec<ExecutionRecord>> {
    Ok(execution_records::table
        .filter(execution_records::workspace_id.eq(workspace_id))
        .filter(execution_records::updated_at.ge(since))
        .order(execution_records::updated_at.asc())
        .limit(limit)
        .select(ExecutionRecord::as_select())
        .load(conn)
        .await?)
}

/// The executions of a workspace QUEUED or RUNNING now, oldest first (at most `limit`).
pub async fn active(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    limit: i64,
) -> AppResult<Vec<ExecutionRecord>> {
    Ok(execution_records::table
        .filter(execution_records::workspace_id.eq(workspace_id))
        .filter(execution_records::status.eq_any(["QUEUED", "RUNNING"]))
        .order((
            execution_records::created_at.asc(),
            execution_records::id.asc(),
        ))
        .limit(limit)
        .select(ExecutionRecord::as_select())
        .load(conn)
        .await?)
}

/// Whether a stored execution status is final.
pub fn is_finished(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "STOPPED")
}
