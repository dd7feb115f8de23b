//! Integration tests against real PostgreSQL and Redis: one binary, tests in parallel, each
//! with a database of its own (see `harness`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod agent;
mod analytics;
mod applications;
mod browsers;
mod chat;
mod chunk_modes;
mod code_node;
mod conversations;
mod datasets;
mod drafts;
mod end_users;
mod endpoints;
mod execution;
mod faults;
mod files;
mod identity;
mod knowledge;
mod limits;
mod live;
mod llm;
mod log_screens;
mod migrations;
mod outbound;
mod parsing;
mod plugins;
mod prompts;
mod providers;
mod ranking;
mod retrieval_options;
mod rights;
mod run_history;
mod schema_sdl;
mod startup;
mod statements;
mod streams;
mod templates;
mod tenancy;
mod tools;
mod workflows;
