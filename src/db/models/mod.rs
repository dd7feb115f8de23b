//! Diesel models, one file per area of the data model; each struct is one row of its table.

mod application;
mod audit;
mod conversation;
mod end_user;
mod file;
mod identity;
mod knowledge;
mod llm_provider;
mod mcp_server;
mod message_row;
mod plugin;
mod prompt;
mod tenancy;
mod workflow;

pub use application::*;
pub use audit::*;
pub use conversation::*;
pub use end_user::*;
pub use file::*;
pub use identity::*;
pub use knowledge::*;
pub use llm_provider::*;
pub use mcp_server::*;
pub use plugin::*;
pub use prompt::*;
pub use tenancy::*;
pub use workflow::*;
