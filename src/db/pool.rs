//! The diesel-async connection pool. Every connection it opens counts its statements into
//! `Metrics::db_queries` through Diesel's instrumentation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::FutureExt;

use crate::metrics::Metrics;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// Whose statements a pool's connections count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Requests and subscriptions (`weft_db_queries_total`).
    Requests,
    /// The engine's workers (`weft_engine_db_queries_total`).
    Engine,
}

/// Counts every statement sent on one connection.
struct QueryCounter(Arc<Metrics>, Counted);

impl Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            match self.1 {
                Counted::Requests => self.0.db_queries.fetch_add(1, Ordering::Relaxed),
                Counted::Engine => self.0.engine_db_queries.fetch_add(1, Ordering::Relaxed),
            };
            if tracing::enabled!(target: "weft::sql", tracing::Level::TRACE) {
                let text = query.to_string();
                tracing::trace!(target: "weft::sql", sql = statement_text(&text), "statement");
            }
        }
    }
}

/// The SQL of a statement as Diesel prints it, without its bind values (` -- binds: [...]`):
/// those are passwords' hashes, tokens' hashes, message text, sealed keys...
fn statement_text(printed: &str) -> &str {
    printed
        .split_once(" -- binds: ")
        .map_or(printed, |(sql, _)| sql)
}

/// Builds the pool. Connections are opened lazily; a request waits at most `wait_timeout`
/// for one, and opening one may take at most 5 s.
pub fn build(
    database_url: &str,
    size: usize,
    wait_timeout: Duration,
    metrics: Arc<Metrics>,
    counted: Counted,
) -> Result<DbPool, deadpool::managed::BuildError> {
    let mut config = ManagerConfig::default();
    // A returned connection is reused without a test query: a broken one fails on first use
    // and is dropped, which costs less than a round trip on every checkout.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let metrics = metrics.clone();
        let url = url.to_string();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            if counted == Counted::Requests {
                // Requests' statements are prepared once per connection and run with other
                // ids each time; left to itself PostgreSQL re-plans a statement whose generic
                // plan it estimates dearer (a page over `unnest($1)`: 0.45 ms of planning
                // for 0.15 ms of execution, every time).
                diesel_async::RunQueryDsl::execute(
                    diesel::sql_query("SET plan_cache_mode = force_generic_plan"),
                    &mut conn,
                )
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            conn.set_instrumentation(QueryCounter(metrics, counted));
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait_timeout))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::statement_text;
    use crate::db::schema::users;

    #[test]
    fn logged_statements_carry_no_bind_values() {
        let query = users::table
            .filter(users::email.eq("ada@example.com"))
            .select(users::id);
        let printed = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
        assert!(printed.contains("ada@example.com"), "{printed}");
        let logged = statement_text(&printed);
        assert!(logged.contains("\"users\".\"email\" = $1"), "{logged}");
        assert!(!logged.contains("ada@example.com"), "{logged}");
    }
}
