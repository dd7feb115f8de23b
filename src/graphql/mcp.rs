//! MCP servers in GraphQL. Header values are write-only: `headerNames` says which are set.

use async_graphql::{Context, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::loaders::*;
use super::tenancy::WorkspaceObject;
use crate::db::models::McpServer;
use crate::error::AppError;
use crate::mcp::service::{self, McpServerInput};

pub struct McpServerObject(pub McpServer);

/// A tool an MCP server offers.
#[derive(SimpleObject)]
#[graphql(name = "McpTool")]
pub struct McpToolObject {
    name: String,
    description: Option<String>,
    /// The JSON Schema of its arguments.
    input_schema: Json<Value>,
}

#[Object(name = "McpServer")]
impl McpServerObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// The names of the headers sent to the server; their values are never returned.
    async fn header_names(&self) -> Vec<String> {
        serde_json::from_value(self.0.header_names.clone()).unwrap_or_default()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?
            .map(WorkspaceObject))
    }
    /// The tools the server offers, asked of it (`tools/list`, cached for 30 s); none while
    /// it is disabled. A server that cannot be reached or answers wrongly is CONFLICT with
    /// the reason.
    async fn tools(&self, ctx: &Context<'_>) -> Result<Vec<McpToolObject>> {
        if !self.0.enabled {
            return Ok(Vec::new());
        }
        let app = ctx.app()?;
        let endpoint = crate::tools::endpoint_of(&app.config.encryption_key, &self.0)?;
        let tools = app
            .mcp
            .list_tools(&endpoint, app.config.engine.interactive_timeout)
            .await
            .map_err(|e| AppError::Conflict(e.to_string()))?;
        Ok(tools
            .into_iter()
            .map(|t| McpToolObject {
                name: t.name,
                description: t.description,
                input_schema: Json(t.input_schema),
            })
            .collect())
    }
}

#[derive(InputObject)]
pub struct CreateMcpServerInput {
    workspace_id: Uuid,
    name: String,
    /// The server's Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp.
    url: String,
    /// Header names to values (an Authorization, an API key); write-only, stored encrypted.
    headers: Option<Json<Value>>,
    enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct UpdateMcpServerInput {
    id: Uuid,
    name: Option<String>,
    /// A new URL; omitted keeps it. A new URL without `headers` removes the stored ones
    /// (enter them again with the new URL).
    url: Option<String>,
    /// Replaces every header when given; `{}` removes them.
    headers: Option<Json<Value>>,
    enabled: Option<bool>,
}

#[derive(Default)]
pub struct McpMutation;

#[Object]
impl McpMutation {
    /// Adds an MCP server to a workspace (EDITOR and up).
    async fn create_mcp_server(
        &self,
        ctx: &Context<'_>,
        input: CreateMcpServerInput,
    ) -> Result<McpServerObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let server = service::create(
            &mut conn,
            actor,
            &ctx.client(),
            (&app.config.encryption_key, &app.config.outbound),
            input.workspace_id,
            McpServerInput {
                name: Some(input.name),
                url: Some(input.url),
                headers: input.headers.map(|h| h.0),
                enabled: input.enabled,
            },
        )
        .await?;
        Ok(McpServerObject(server))
    }

    /// Changes an MCP server (EDITOR and up).
    async fn update_mcp_server(
        &self,
        ctx: &Context<'_>,
        input: UpdateMcpServerInput,
    ) -> Result<McpServerObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let server = service::update(
            &mut conn,
            actor,
            &ctx.client(),
            (&app.config.encryption_key, &app.config.outbound),
            input.id,
            McpServerInput {
                name: input.name,
                url: input.url,
                headers: input.headers.map(|h| h.0),
                enabled: input.enabled,
            },
        )
        .await?;
        Ok(McpServerObject(server))
    }

    /// Removes an MCP server (EDITOR and up); nodes naming it fail until changed.
    async fn delete_mcp_server(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        service::delete(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
