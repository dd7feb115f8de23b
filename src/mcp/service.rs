//! Adding, changing and removing a workspace's MCP servers (EDITOR and up, like plugins).
//! Header values are sealed together, bound to the row; a new URL without the headers
//! entered again drops them, so credentials only go where they were entered for.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::McpServer;
use crate::db::schema::mcp_servers;
use crate::error::{AppError, AppResult};
use crate::outbound::OutboundConfig;
use crate::secrets::{self, Secret};
use crate::validate;

/// The most headers a server may be given.
const MAX_HEADERS: usize = 20;

/// An MCP server's settings as given; `None` leaves a setting as it is on update.
#[derive(Default)]
pub struct McpServerInput {
    pub name: Option<String>,
    pub url: Option<String>,
    /// Header names to values; replaces all headers when given.
    pub headers: Option<Value>,
    pub enabled: Option<bool>,
}

/// What the sealed headers of server `id` are bound to.
pub fn headers_binding(id: Uuid) -> String {
    format!("mcp_servers.headers_encrypted:{id}")
}

fn check_url(outbound: &OutboundConfig, url: &str) -> AppResult<String> {
    let url = validate::text("url", url.trim(), 2000)?;
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| AppError::bad_input("url", "url must be an absolute http(s) URL"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(AppError::bad_input("url", "url must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(AppError::bad_input(
            "url",
            "put credentials in headers, not in the url",
        ));
    }
    outbound
        .check_url(&parsed)
        .map_err(|refused| AppError::bad_input("url", refused.to_string()))?;
    Ok(url)
}

/// Header names and values checked: names as HTTP allows, values printable, no more than
/// `MAX_HEADERS`; the protocol's own headers cannot be set.
fn check_headers(headers: &Value) -> AppResult<Map<String, Value>> {
    let map = match headers {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) => map,
        _ => {
            return Err(AppError::bad_input(
                "headers",
                "headers must be an object of header names to string values",
            ));
        }
    };
    if map.len() > MAX_HEADERS {
        return Err(AppError::bad_input(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (name, value) in map {
        let Some(text) = value.as_str() else {
            return Err(AppError::bad_input(
                "headers",
                format!("the value of header {name:?} must be a string"),
            ));
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(AppError::bad_input(
                "headers",
                format!("{name:?} is not a header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if [
            "host",
            "content-type",
            "content-length",
            "accept",
            "mcp-session-id",
            "mcp-protocol-version",
        ]
        .contains(&lower.as_str())
        {
            return Err(AppError::bad_input(
                "headers",
                format!("the header {name} is set by the protocol"),
            ));
        }
        if text.len() > 8192 || reqwest::header::HeaderValue::from_str(text).is_err() {
            return Err(AppError::bad_input(
                "headers",
                format!("the value of header {name} is not a valid header value"),
            ));
        }
    }
    Ok(map.clone())
}

/// The sealed headers and their names (none sealed when there are none).
fn seal(
    key: &Secret,
    headers: &Map<String, Value>,
    id: Uuid,
) -> AppResult<(Option<Vec<u8>>, Value)> {
    let names: Vec<&String> = headers.keys().collect();
    if headers.is_empty() {
        return Ok((None, json!(names)));
    }
    let plain = serde_json::to_vec(headers).map_err(AppError::internal)?;
    let sealed = secrets::encrypt(key, &plain, &headers_binding(id)).map_err(AppError::internal)?;
    Ok((Some(sealed), json!(names)))
}

/// The headers of a server, unsealed (for a request to it).
pub fn headers_of(key: &Secret, server: &McpServer) -> AppResult<Vec<(String, String)>> {
    let Some(sealed) = &server.headers_encrypted else {
        return Ok(Vec::new());
    };
    let plain = secrets::decrypt(key, sealed, &headers_binding(server.id))
        .map_err(|e| AppError::internal(format!("MCP server headers: {e}")))?;
    let map: Map<String, Value> = serde_json::from_slice(&plain).map_err(AppError::internal)?;
    Ok(map
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_string())))
        .collect())
}

fn unique_violation(e: diesel::result::Error) -> AppError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::Conflict("an MCP server with this name exists in the workspace".into()),
        other => other.into(),
    }
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    (key, outbound): (&Secret, &OutboundConfig),
    workspace_id: Uuid,
    input: McpServerInput,
) -> AppResult<McpServer> {
    let name = validate::name("name", input.name.as_deref().unwrap_or(""), 255)?;
    let url = check_url(outbound, input.url.as_deref().unwrap_or(""))?;
    let headers = check_headers(input.headers.as_ref().unwrap_or(&Value::Null))?;
    let id = Uuid::new_v4();
    let (sealed, names) = seal(key, &headers, id)?;
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        let server: McpServer = diesel::insert_into(mcp_servers::table)
            .values((
                mcp_servers::id.eq(id),
                mcp_servers::workspace_id.eq(workspace_id),
                mcp_servers::name.eq(&name),
                mcp_servers::url.eq(&url),
                mcp_servers::headers_encrypted.eq(&sealed),
                mcp_servers::header_names.eq(&names),
                mcp_servers::enabled.eq(input.enabled.unwrap_or(true)),
                mcp_servers::created_by.eq(actor.user_id().ok()),
            ))
            .returning(McpServer::as_returning())
            .get_result(conn)
            .await
            .map_err(unique_violation)?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "mcp_server.create",
                resource_type: "mcp_server",
                resource_id: Some(server.id),
                // Header names only, never their values.
                metadata: json!({ "name": name, "headers": names }),
            },
        )
        .await?;
        Ok(server)
    })
    .await
}

async fn for_managing(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<McpServer> {
    let user_id = actor.user_id()?;
    let server: McpServer = mcp_servers::table
        .find(id)
        .filter(mcp_servers::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(McpServer::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("MCP server"))?;
    authorize_workspace(conn, actor, server.workspace_id, Action::Build).await?;
    Ok(server)
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    (key, outbound): (&Secret, &OutboundConfig),
    id: Uuid,
    input: McpServerInput,
) -> AppResult<McpServer> {
    let name = input
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 255))
        .transpose()?;
    let url = input
        .url
        .as_deref()
        .map(|u| check_url(outbound, u))
        .transpose()?;
    let headers = input.headers.as_ref().map(check_headers).transpose()?;
    let resealed = headers.as_ref().map(|h| seal(key, h, id)).transpose()?;
    conn.transaction(async |conn| {
        let current = for_managing(conn, actor, id).await?;
        let moved = url.as_ref().is_some_and(|u| *u != current.url);
        let (sealed, names) = match (&resealed, moved) {
            (Some(new), _) => new.clone(),
            (None, true) => (None, json!([])),
            (None, false) => (current.headers_encrypted.clone(), current.header_names.clone()),
        };
        let headers_cleared =
            resealed.is_none() && moved && current.headers_encrypted.is_some();
        let updated: McpServer = diesel::update(mcp_servers::table.find(current.id))
            .set((
                mcp_servers::name.eq(name.clone().unwrap_or(current.name.clone())),
                mcp_servers::url.eq(url.clone().unwrap_or(current.url.clone())),
                mcp_servers::headers_encrypted.eq(sealed),
                mcp_servers::header_names.eq(&names),
                mcp_servers::enabled.eq(input.enabled.unwrap_or(current.enabled)),
            ))
            .returning(McpServer::as_returning())
            .get_result(conn)
            .await
            .map_err(unique_violation)?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "mcp_server.update",
                resource_type: "mcp_server",
                resource_id: Some(updated.id),
                metadata: json!({ "headersChanged": resealed.is_some(), "headersCleared": headers_cleared,
                                  "urlChanged": moved, "enabled": updated.enabled }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Removes a server; graphs naming it fail at their node until changed.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let current = for_managing(conn, actor, id).await?;
        diesel::delete(mcp_servers::table.find(current.id))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "mcp_server.delete",
                resource_type: "mcp_server",
                resource_id: Some(current.id),
                metadata: json!({ "name": current.name }),
            },
        )
        .await?;
        Ok(())
    })
    .await
}

/// Server `id` of workspace `workspace_id` (the caller's run or graph), enabled or not.
pub async fn of_workspace(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    id: Uuid,
) -> AppResult<Option<McpServer>> {
    Ok(mcp_servers::table
        .find(id)
        .filter(mcp_servers::workspace_id.eq(workspace_id))
        .select(McpServer::as_select())
        .first(conn)
        .await
        .optional()?)
}
