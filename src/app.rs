//! The application state shared by every request, subscription and background task.

use std::sync::Arc;

use crate::config::{Config, redact_url};
use crate::db::{self, DbPool};
use crate::metrics::Metrics;
use crate::realtime::{Broker, BrokerError};

/// Everything a handler needs, built once at start-up.
pub struct App {
    pub config: Config,
    pub pool: DbPool,
    pub broker: Broker,
    pub metrics: Arc<Metrics>,
}

/// What stopped the service from starting; each message says what was tried and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "cannot reach PostgreSQL at {url}: {detail}. Start it (for example \
         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) \
         or point DATABASE_URL at a running server."
    )]
    Postgres { url: String, detail: String },
    #[error(
        "{0}. Start it (for example `redis-server --daemonize yes`), point REDIS_URL at a \
         running server, or set REDIS_URL=memory for a single instance."
    )]
    Redis(#[from] BrokerError),
}

impl App {
    /// Prepares the database (creating it and migrating when needed), opens the pool and
    /// connects to the bus.
    pub async fn start(config: Config) -> Result<Arc<App>, StartupError> {
        let postgres = |detail: String| StartupError::Postgres {
            url: redact_url(&config.database_url),
            detail,
        };
        if db::migrate::ensure_database(&config.database_url)
            .await
            .map_err(|e| postgres(e.to_string()))?
        {
            tracing::info!("created database");
        }
        let applied = db::migrate::run_pending(&config.database_url)
            .await
            .map_err(|e| postgres(e.to_string()))?;
        if applied > 0 {
            tracing::info!(applied, "applied migrations");
        }
        let metrics = Arc::new(Metrics::default());
        let pool = db::pool::build(
            &config.database_url,
            config.database_pool_size,
            config.database_wait_timeout,
            metrics.clone(),
        )
        .map_err(|e| postgres(e.to_string()))?;
        let broker = Broker::connect(&config.redis).await?;
        Ok(Arc::new(App {
            config,
            pool,
            broker,
            metrics,
        }))
    }
}
