//! The GraphQL schema: its assembly, the root types and the mapping of errors to codes.

mod context;
mod errors;
mod identity;
pub mod loaders;
mod query;
mod tenancy;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};

use crate::app::App;

pub use errors::ErrorCodes;
pub use query::{Mutation, Query};

/// The executable schema of the service.
pub type WeftSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema's shape and extensions, without state: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription).extension(ErrorCodes)
}

/// The schema wired to the application state.
pub fn build_schema(app: Arc<App>) -> WeftSchema {
    schema_builder().data(app).finish()
}

/// The SDL, as checked in at `schema.graphql` and served at `/schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
