//! MCP servers of a workspace: `service` adds, changes and removes them (headers sealed);
//! `client` speaks the Model Context Protocol (Streamable HTTP) to them through the
//! outbound guard, keeping sessions and tool lists.

pub mod client;
pub mod service;

pub use client::{CallResult, Endpoint, McpClients, McpError, McpTool};
