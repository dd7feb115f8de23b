//! The GraphQL schema: its assembly, the root types and the mapping of errors to codes.

mod analytics;
mod application;
mod audit;
mod chat;
mod context;
mod conversation;
mod conversation_row;
mod dataset;
pub mod documents;
mod enums;
mod errors;
mod execution;
mod feed;
mod file;
mod identity;
mod knowledge;
pub mod lists;
mod live_rights;
pub mod loaders;
mod mcp;
mod message_event;
mod message_page;
pub mod operation_limits;
mod pages;
pub mod pagination;
pub mod plain;
mod plain_connection;
mod plugin;
mod prompt;
mod provider;
mod query;
pub mod shared;
pub mod subscription;
mod template;
mod tenancy;
mod tool_call;
pub mod viewer;
mod workflow;

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};

use crate::app::App;

pub use errors::{classify_response, streamed_json};
pub use query::{Mutation, Query};
pub use subscription::SubscriptionRoot;

/// The executable schema of the service.
pub type WeftSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// The schema's shape, without state: enough to print the SDL. It has no extensions: objects
/// answered through `plain::Plain` resolve their plain fields without async-graphql's
/// per-field path, which extensions hook into.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, SubscriptionRoot> {
    Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
}

/// The schema wired to the application state.
pub fn build_schema(app: Arc<App>) -> WeftSchema {
    let limits = app.config.api_limits;
    let builder = schema_builder()
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(limits.max_directives);
    let builder = if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder.data(app).finish()
}

/// The SDL, as checked in at `schema.graphql` and served at `/schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
