//! Tools that TOOL and AGENT nodes call: a tool of one of the workspace's MCP servers
//! (`{ "mcpServerId", "name" }`) or of one of its plugin installations
//! (`{ "installedPluginId", "name" }`). `prepare` finds the tool in the run's workspace
//! (its name, description and argument schema, what a model is offered); `call` calls it.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::app::App;
use crate::db::models::{InstalledPlugin, McpServer, Plugin};
use crate::db::schema::{installed_plugins, mcp_servers, plugins};
use crate::error::{AppError, AppResult};
use crate::mcp::Endpoint;
use crate::plugin::catalogue::{FieldType, Manifest, Tool};
use crate::secrets::Secret;

/// A tool as a graph names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRef {
    Mcp { server_id: Uuid, name: String },
    Plugin { installation_id: Uuid, name: String },
}

impl ToolRef {
    /// `{ "mcpServerId", "name" }` or `{ "installedPluginId", "name" }`.
    pub fn parse(value: &Value) -> Result<ToolRef, String> {
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty() && n.len() <= 200)
            .ok_or("a tool needs its name")?
            .to_string();
        let id = |field: &str| {
            value
                .get(field)
                .and_then(Value::as_str)
                .map(|id| Uuid::parse_str(id).map_err(|_| format!("{field} must be a UUID")))
        };
        match (id("mcpServerId"), id("installedPluginId")) {
            (Some(server), None) => Ok(ToolRef::Mcp {
                server_id: server?,
                name,
            }),
            (None, Some(installation)) => Ok(ToolRef::Plugin {
                installation_id: installation?,
                name,
            }),
            _ => Err("a tool names either mcpServerId or installedPluginId".into()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ToolRef::Mcp { name, .. } | ToolRef::Plugin { name, .. } => name,
        }
    }
}

/// The most tools one AGENT node offers.
pub const MAX_TOOLS: usize = 32;

/// The name a tool is offered under: what OpenAI accepts (`[a-zA-Z0-9_-]{1,64}`), other
/// characters as `_`.
pub fn function_name(tool: &str) -> String {
    tool.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The tools an AGENT node's config offers (`tools`), under names that differ.
pub fn agent_tools(config: &Value) -> Result<Vec<ToolRef>, String> {
    match config.get("tools") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(listed)) => {
            if listed.len() > MAX_TOOLS {
                return Err(format!("config.tools holds more than {MAX_TOOLS} tools"));
            }
            let mut refs = Vec::with_capacity(listed.len());
            let mut names: Vec<String> = Vec::new();
            for (i, tool) in listed.iter().enumerate() {
                let tool = ToolRef::parse(tool).map_err(|e| format!("config.tools[{i}]: {e}"))?;
                let name = function_name(tool.name());
                if names.contains(&name) {
                    return Err(format!(
                        "config.tools[{i}]: another tool is offered under the name {name}"
                    ));
                }
                names.push(name);
                refs.push(tool);
            }
            Ok(refs)
        }
        Some(_) => Err("config.tools must be a list of tools".into()),
    }
}

/// A tool found and ready to call.
pub struct ReadyTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    target: Target,
}

enum Target {
    Mcp(Endpoint),
    Plugin {
        plugin: String,
        tool: Tool,
        settings: Map<String, Value>,
    },
}

/// What a call gave.
pub struct ToolOutput {
    pub result: Value,
    pub text: String,
}

/// How to reach an MCP server (its headers unsealed).
pub fn endpoint_of(key: &Secret, server: &McpServer) -> AppResult<Endpoint> {
    Ok(Endpoint {
        server_id: server.id,
        url: server.url.clone(),
        headers: crate::mcp::service::headers_of(key, server)?,
        stamp: server.updated_at,
    })
}

fn unavailable(e: AppError) -> String {
    match e {
        AppError::Internal(_) => {
            tracing::error!(error = ?e, "a tool cannot be prepared");
            "the tool cannot be used".to_string()
        }
        other => other.to_string(),
    }
}

/// Finds `tool` in workspace `workspace_id`; the message says why it cannot be used.
pub async fn prepare(
    app: &App,
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    tool: &ToolRef,
    patience: Duration,
) -> Result<ReadyTool, String> {
    match tool {
        ToolRef::Mcp { server_id, name } => {
            let server = crate::mcp::service::of_workspace(conn, workspace_id, *server_id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| {
                    format!("the MCP server {server_id} is not one of this workspace's")
                })?;
            if !server.enabled {
                return Err(format!("the MCP server {} is disabled", server.name));
            }
            let endpoint = endpoint_of(&app.config.encryption_key, &server).map_err(unavailable)?;
            let listed = app
                .mcp
                .list_tools(&endpoint, patience)
                .await
                .map_err(|e| format!("{} ({}): {e}", server.name, host_of(&server.url)))?;
            let found = listed
                .into_iter()
                .find(|t| t.name == *name)
                .ok_or_else(|| format!("the MCP server {} has no tool {name}", server.name))?;
            Ok(ReadyTool {
                name: found.name,
                description: found.description,
                input_schema: found.input_schema,
                target: Target::Mcp(endpoint),
            })
        }
        ToolRef::Plugin {
            installation_id,
            name,
        } => {
            let found: Option<(InstalledPlugin, Plugin)> = installed_plugins::table
                .inner_join(plugins::table)
                .filter(installed_plugins::id.eq(installation_id))
                .filter(installed_plugins::workspace_id.eq(workspace_id))
                .select((InstalledPlugin::as_select(), Plugin::as_select()))
                .first(conn)
                .await
                .optional()
                .map_err(|e| unavailable(e.into()))?;
            let (installation, plugin) = found.ok_or_else(|| {
                format!("the plugin installation {installation_id} is not one of this workspace's")
            })?;
            let manifest = Manifest::of(&plugin.manifest).map_err(unavailable)?;
            if !installation.is_enabled || !plugin.is_active {
                return Err(format!(
                    "the plugin {} is switched off",
                    manifest.display_name
                ));
            }
            let tool = manifest
                .tools
                .iter()
                .find(|t| t.name == *name)
                .cloned()
                .ok_or_else(|| {
                    format!("the plugin {} has no tool {name}", manifest.display_name)
                })?;
            let settings = settings_of(&app.config.encryption_key, &manifest, &installation)
                .map_err(unavailable)?;
            Ok(ReadyTool {
                name: tool.name.clone(),
                description: Some(tool.description.clone()),
                input_schema: crate::plugin::tools::input_schema(&tool),
                target: Target::Plugin {
                    plugin: manifest.name.clone(),
                    tool,
                    settings,
                },
            })
        }
    }
}

/// An installation's settings with its secrets revealed, for the code that runs the tool.
fn settings_of(
    key: &Secret,
    manifest: &Manifest,
    installation: &InstalledPlugin,
) -> AppResult<Map<String, Value>> {
    let mut settings = installation.config.as_object().cloned().unwrap_or_default();
    for field in manifest
        .config
        .iter()
        .filter(|f| f.field_type == FieldType::Secret)
    {
        match crate::plugin::config::reveal(
            &installation.config,
            &field.name,
            key,
            installation.id,
        )? {
            Some(plain) => settings.insert(field.name.clone(), Value::String(plain)),
            None => settings.remove(&field.name),
        };
    }
    Ok(settings)
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Calls a prepared tool; an error (the tool's own included) is its message.
pub async fn call(
    app: &App,
    tool: &ReadyTool,
    arguments: Value,
    patience: Duration,
) -> Result<ToolOutput, String> {
    match &tool.target {
        Target::Mcp(endpoint) => {
            let called = app
                .mcp
                .call_tool(endpoint, &tool.name, arguments, patience)
                .await
                .map_err(|e| e.to_string())?;
            if called.is_error {
                return Err(if called.text.is_empty() {
                    format!("the tool {} reported an error", tool.name)
                } else {
                    called.text
                });
            }
            Ok(ToolOutput {
                result: called.result,
                text: called.text,
            })
        }
        Target::Plugin {
            plugin,
            tool: declared,
            settings,
        } => {
            let run = crate::plugin::tools::call(
                plugin,
                declared,
                settings,
                &arguments,
                &app.config.outbound,
            );
            let output = tokio::time::timeout(patience, run)
                .await
                .map_err(|_| format!("the tool {} did not answer in time", tool.name))??;
            Ok(ToolOutput {
                result: output.result,
                text: output.text,
            })
        }
    }
}

/// Every tool a graph's TOOL and AGENT nodes name belongs to workspace `workspace_id`:
/// another workspace's server or installation is refused when the graph is saved, naming
/// the node (BAD_USER_INPUT), as if it did not exist.
pub async fn check_graph(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    graph: &crate::workflow::Graph,
) -> AppResult<()> {
    for (index, node) in graph.nodes.iter().enumerate() {
        let named: Vec<ToolRef> = match node.node_type {
            crate::workflow::NodeType::Tool => node
                .config
                .get("tool")
                .into_iter()
                .filter_map(|t| ToolRef::parse(t).ok())
                .collect(),
            crate::workflow::NodeType::Agent => node
                .config
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| ToolRef::parse(t).ok())
                .collect(),
            _ => Vec::new(),
        };
        for tool in named {
            let found: i64 = match &tool {
                ToolRef::Mcp { server_id, .. } => {
                    mcp_servers::table
                        .filter(mcp_servers::id.eq(server_id))
                        .filter(mcp_servers::workspace_id.eq(workspace_id))
                        .count()
                        .get_result(conn)
                        .await?
                }
                ToolRef::Plugin {
                    installation_id, ..
                } => {
                    installed_plugins::table
                        .filter(installed_plugins::id.eq(installation_id))
                        .filter(installed_plugins::workspace_id.eq(workspace_id))
                        .count()
                        .get_result(conn)
                        .await?
                }
            };
            if found == 0 {
                let what = match &tool {
                    ToolRef::Mcp { server_id, .. } => format!("MCP server {server_id}"),
                    ToolRef::Plugin {
                        installation_id, ..
                    } => format!("plugin installation {installation_id}"),
                };
                return Err(AppError::bad_input(
                    format!("graph.nodes[{index}]"),
                    format!(
                        "node \"{}\": the {what} is not one of this workspace's",
                        node.key
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tools_are_offered_under_names_a_provider_accepts() {
        assert_eq!(function_name("get_weather"), "get_weather");
        assert_eq!(function_name("files.read v2"), "files_read_v2");
        assert_eq!(function_name(&"x".repeat(80)).len(), 64);
    }

    #[test]
    fn two_tools_under_one_name_are_refused() {
        let server = uuid::Uuid::new_v4().to_string();
        let config = json!({ "tools": [
            { "mcpServerId": server, "name": "a.b" },
            { "mcpServerId": server, "name": "a_b" },
        ]});
        let error = agent_tools(&config).unwrap_err();
        assert!(error.contains("config.tools[1]"), "{error}");
        assert!(agent_tools(&json!({ "tools": "add" })).is_err());
        assert_eq!(agent_tools(&json!({})).unwrap(), Vec::new());
    }
}
