//! The audit log in GraphQL, for a workspace's OWNERs and ADMINs.

use async_graphql::{Context, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::context::ContextExt;
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::tenancy::UserProfileObject;
use crate::auth::Action;
use crate::db::models::{AuditLog, Workspace};
use crate::error::AppError;

pub struct AuditLogObject(pub AuditLog);

#[Object(name = "AuditLog")]
impl AuditLogObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// `<resource>.<verb>`, e.g. `workflow.update_graph`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn resource_type(&self) -> &str {
        &self.0.resource_type
    }
    async fn resource_id(&self) -> Option<Uuid> {
        self.0.resource_id
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0.metadata.clone())
    }
    /// USER, API_KEY, END_USER or SYSTEM.
    async fn actor_type(&self) -> &str {
        &self.0.actor_type
    }
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.actor_user_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    async fn api_key_id(&self) -> Option<Uuid> {
        self.0.actor_api_key_id
    }
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    /// Exactly this action, e.g. `workflow.create`.
    action: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// `Workspace.auditLogs`, newest first; FORBIDDEN below ADMIN.
pub async fn workspace_audit_logs(
    ctx: &Context<'_>,
    workspace: &Workspace,
    args: PageArgs,
    filter: Option<AuditLogFilter>,
) -> Result<Conn<AuditLogObject>> {
    let role = ctx
        .loader()?
        .load_one(ViewerRoleInTeam(workspace.team_id))
        .await?;
    if !role.is_some_and(|r| r.may(Action::ReadAuditLog)) {
        return Err(AppError::Forbidden.into());
    }
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        name_contains: None,
        status: f.action,
        created_after: f.created_after,
        created_before: f.created_before,
        application_id: None,
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspaceAuditLogs,
        workspace.id,
        page,
        filter,
        AuditLogObject,
    )
    .await
}
