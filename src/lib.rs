//! Weft: the GraphQL backend of an LLM application platform.
//!
//! The map of this crate is `ARCHITECTURE.md`. In short: `config` and `app` build the state
//! once, `http` and `graphql` serve it, `db` holds PostgreSQL, `realtime` the event bus.

pub mod analytics;
pub mod app;
pub mod application;
pub mod audit;
pub mod auth;
pub mod config;
pub mod conversation;
pub mod db;
pub mod demo;
pub mod engine;
pub mod error;
pub mod files;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod knowledge;
pub mod llm;
pub mod mail;
pub mod mcp;
pub mod metrics;
pub mod outbound;
pub mod plugin;
pub mod prompt;
pub mod provider;
pub mod realtime;
pub mod sandbox;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tenancy;
pub mod tools;
pub mod validate;
pub mod workflow;
