//! The test harness: a database per test cloned from a migrated template, a Redis key prefix
//! per test, and the server started in-process on an ephemeral port.

pub mod accounts;
pub mod chat;
pub mod db;
pub mod live;
pub mod mcp_server;
pub mod model_server;
pub mod redis_server;
pub mod s3;
pub mod seed;
pub mod server;
pub mod smtp;

pub use db::TestDb;
pub use redis_server::RedisServer;
pub use server::TestServer;
