//! The root `Query` and `Mutation` types, merged from one part per domain.

use async_graphql::{MergedObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::application::{ApplicationMutation, ApplicationQuery};
use super::chat::ChatMutation;
use super::conversation::{ConversationMutation, ConversationQuery};
use super::dataset::{DatasetMutation, DatasetQuery};
use super::execution::{ExecutionMutation, ExecutionQuery};
use super::file::{FileMutation, FileQuery};
use super::identity::{IdentityMutation, IdentityQuery};
use super::knowledge::{KnowledgeMutation, KnowledgeQuery};
use super::mcp::McpMutation;
use super::plugin::{PluginMutation, PluginQuery};
use super::prompt::PromptMutation;
use super::provider::ProviderMutation;
use super::template::{TemplateMutation, TemplateQuery};
use super::tenancy::{TenancyMutation, TenancyQuery};
use super::workflow::{WorkflowMutation, WorkflowQuery};

/// Facts about the API itself.
#[derive(Default)]
pub struct HealthQuery;

/// Facts about the serving instance.
#[derive(SimpleObject)]
pub struct Health {
    /// The server's version.
    pub version: String,
    /// The server's clock.
    pub server_time: DateTime<Utc>,
}

#[Object]
impl HealthQuery {
    /// Whether the API answers, and which version does.
    async fn health(&self) -> Health {
        Health {
            version: env!("CARGO_PKG_VERSION").to_string(),
            server_time: Utc::now(),
        }
    }
}

/// Entry points of every read.
#[derive(MergedObject, Default)]
pub struct Query(
    HealthQuery,
    IdentityQuery,
    TenancyQuery,
    WorkflowQuery,
    ExecutionQuery,
    ApplicationQuery,
    ConversationQuery,
    TemplateQuery,
    DatasetQuery,
    KnowledgeQuery,
    PluginQuery,
    FileQuery,
);

/// Entry points of every change.
#[derive(MergedObject, Default)]
pub struct Mutation(
    IdentityMutation,
    TenancyMutation,
    WorkflowMutation,
    ExecutionMutation,
    ApplicationMutation,
    ChatMutation,
    ConversationMutation,
    ProviderMutation,
    TemplateMutation,
    PromptMutation,
    DatasetMutation,
    KnowledgeMutation,
    PluginMutation,
    McpMutation,
    FileMutation,
);
