//! PostgreSQL: the connection pool, migrations, the Diesel schema and models.

pub mod migrate;
pub mod models;
pub mod pool;
#[rustfmt::skip]
pub mod schema;
pub mod statement;

pub use pool::{DbConn, DbPool};
