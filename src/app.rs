//! The application state shared by every request, subscription and background task.

use std::sync::Arc;

use crate::auth::password::PasswordHasher;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::tokens::TokenSigner;
use crate::config::{Config, redact_url};
use crate::db::{self, DbPool};
use crate::engine::Engine;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::realtime::{Broker, BrokerError, Realtime};
use crate::storage::ObjectStore;

/// Everything a handler needs, built once at start-up.
pub struct App {
    pub config: Config,
    pub pool: DbPool,
    pub broker: Broker,
    /// The event bus and replayable streams.
    pub realtime: Realtime,
    pub metrics: Arc<Metrics>,
    pub auth: AuthServices,
    pub mailer: Mailer,
    pub store: ObjectStore,
    /// Runs of workflows and chat replies in this instance.
    pub engine: Engine,
    /// Datasets' embeddings held for vector search.
    pub vectors: crate::knowledge::vectors::VectorCache,
    /// Sessions with MCP servers and their tool lists.
    pub mcp: crate::mcp::McpClients,
}

/// What authentication needs beyond the database.
pub struct AuthServices {
    pub signer: TokenSigner,
    pub hasher: PasswordHasher,
    pub limiter: RateLimiter,
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
    #[error("{0}")]
    Config(String),
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
            db::pool::Counted::Requests,
        )
        .map_err(|e| postgres(e.to_string()))?;
        // The workers' own connections: runs are not starved by request bursts, nor
        // requests by runs.
        let engine_pool = db::pool::build(
            &config.database_url,
            config.database_pool_size,
            config.database_wait_timeout,
            metrics.clone(),
            db::pool::Counted::Engine,
        )
        .map_err(|e| postgres(e.to_string()))?;
        let mut conn = pool.get().await.map_err(|e| postgres(e.to_string()))?;
        let templates = crate::workflow::templates::load_official(&mut conn)
            .await
            .map_err(|e| {
                StartupError::Config(format!(
                    "cannot load the official workflow templates: {e:?}"
                ))
            })?;
        let plugins = crate::plugin::catalogue::load_shipped(&mut conn)
            .await
            .map_err(|e| {
                StartupError::Config(format!("cannot load the plugin catalogue: {e:?}"))
            })?;
        let bound = crate::provider::service::bind_legacy_keys(&mut conn, &config.encryption_key)
            .await
            .map_err(|e| {
                StartupError::Config(format!("cannot bind the stored provider keys: {e:?}"))
            })?;
        if bound > 0 {
            tracing::info!(bound, "provider keys sealed again, bound to their rows");
        }
        drop(conn);
        tracing::debug!(
            templates,
            plugins,
            "official workflow templates and plugins loaded"
        );
        let broker = Broker::connect(&config.redis).await?;
        let smtp_url = config
            .smtp_url
            .as_ref()
            .map(|s| String::from_utf8_lossy(s.expose()).into_owned());
        let mailer = Mailer::from_config(smtp_url.as_deref(), &config.mail_from)
            .map_err(StartupError::Config)?;
        let store = ObjectStore::open(&config.storage).await.map_err(|e| {
            StartupError::Config(format!(
                "cannot use the store for uploaded files: {e}; see README, \"Files\""
            ))
        })?;
        tracing::info!(store = %store.describe(), "uploaded files kept in");
        let hashing = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
        let auth = AuthServices {
            signer: TokenSigner::new(&config.jwt_secret),
            hasher: PasswordHasher::new(hashing)
                .await
                .map_err(|e| StartupError::Config(format!("password hashing: {e}")))?,
            limiter: RateLimiter::new(broker.clone(), &config.redis_prefix, config.login_limits),
        };
        let realtime = Realtime::new(
            &broker,
            &config.realtime,
            &config.redis_prefix,
            metrics.clone(),
        );
        let engine = Engine::new(
            config.engine.clone(),
            engine_pool,
            config.outbound.client(std::time::Duration::from_secs(10)),
        );
        let vectors = crate::knowledge::vectors::VectorCache::new(
            config.engine.vector_cache_mb,
            config.engine.vector_approximate_above,
        );
        crate::knowledge::tokens::warm_up();
        let mcp = crate::mcp::McpClients::new(&config.outbound);
        Ok(Arc::new(App {
            engine,
            vectors,
            mcp,
            config,
            pool,
            broker,
            realtime,
            metrics,
            auth,
            mailer,
            store,
        }))
    }
}
