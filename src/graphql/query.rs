//! The root `Query` type.

use async_graphql::{Object, SimpleObject};
use chrono::{DateTime, Utc};

/// Entry points of every read.
pub struct Query;

/// Facts about the serving instance.
#[derive(SimpleObject)]
pub struct Health {
    /// The server's version.
    pub version: String,
    /// The server's clock.
    pub server_time: DateTime<Utc>,
}

#[Object]
impl Query {
    /// Whether the API answers, and which version does.
    async fn health(&self) -> Health {
        Health {
            version: env!("CARGO_PKG_VERSION").to_string(),
            server_time: Utc::now(),
        }
    }
}
