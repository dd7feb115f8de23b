//! Diesel models: MCP servers configured per workspace.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::mcp_servers;

/// A row of `mcp_servers`.
// No Debug: the row holds sealed header values.
#[derive(Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = mcp_servers, check_for_backend(diesel::pg::Pg))]
pub struct McpServer {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub url: String,
    /// The headers sent to the server, one JSON object sealed (bound to the row).
    pub headers_encrypted: Option<Vec<u8>>,
    /// The names of those headers, shown.
    pub header_names: Value,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
