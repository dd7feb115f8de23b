//! Configuration, read once at start-up from the environment.
//!
//! Variables (all documented in README.md):
//! - `DATABASE_URL`: PostgreSQL (default `postgres://postgres@127.0.0.1:5432/weft`).
//! - `DATABASE_POOL_SIZE`: connections in the pool (default 16).
//! - `REDIS_URL`: Redis (default `redis://127.0.0.1:6379`); `memory` selects the in-process bus.
//! - `WEFT_REDIS_PREFIX`: prefix of every Redis key and channel (default `weft:`).
//! - `WEFT_BIND`: listen address (default `127.0.0.1:8080`).
//! - `WEFT_DATA_DIR`: local state: generated secrets, the file store (default `./data`).
//! - `WEFT_STORAGE_DIR`, or `WEFT_S3_*` for an S3-compatible bucket: where uploaded files go
//!   (see `storage::config`).
//! - `WEFT_JWT_SECRET`: key signing access tokens; generated into the data dir when unset.
//! - `WEFT_ENCRYPTION_KEY`: 64 hex characters (32 bytes) encrypting stored provider keys;
//!   generated into the data dir when unset.
//! - `WEFT_PUBLIC_URL`: the address users reach the service at, for links in mail
//!   (default `http://<WEFT_BIND>`).
//! - `WEFT_SMTP_URL`: SMTP server for outgoing mail; unset, mail goes to the log.
//! - `WEFT_MAIL_FROM`: sender of outgoing mail (default `Weft <no-reply@localhost>`).
//! - `WEFT_MAX_DEPTH` (15), `WEFT_MAX_COMPLEXITY` (25000), `WEFT_MAX_DIRECTIVES` (50),
//!   `WEFT_MAX_ROOT_FIELDS` (10):
//!   limits of a GraphQL document; `WEFT_INTROSPECTION` (`true`) turns introspection off
//!   with `false`.
//! - `WEFT_DATALOADER_DELAY_MS` (0): how long a DataLoader gathers keys before a batch.
//! - `WEFT_STREAM_*`, `WEFT_MAX_SUBSCRIPTIONS`, `WEFT_SEND_TIMEOUT_SECS`,
//!   `WEFT_SHUTDOWN_TIMEOUT`: streams and live connections (see `realtime::config`).
//! - `WEFT_ALLOWED_ORIGINS`: browser origins allowed by CORS and the WebSocket check (see
//!   `http::origins`).
//! - `WEFT_TRUSTED_PROXIES`: reverse proxies whose `X-Forwarded-For` names the client (see
//!   `http::proxies`).
//! - `WEFT_HEADER_READ_TIMEOUT_SECS`, `WEFT_REQUEST_TIMEOUT_SECS`,
//!   `WEFT_MAX_CONNECTIONS_PER_USER`, `WEFT_MAX_CONNECTIONS_PER_ADDRESS`: the HTTP surface
//!   (see `http::config`).
//! - `WEFT_WORKERS`, `WEFT_RUN_LEASE_SECS`, `WEFT_NODE_TIMEOUT_SECS`, `WEFT_ECHO_PACE_MS`,
//!   `WEFT_DEMO`, `WEFT_VECTOR_CACHE_MB`, `WEFT_INTERACTIVE_TIMEOUT_SECS`: runs and retrieval (see `engine::config`).
//! - `WEFT_HTTP_ALLOWED_NETWORKS`: private networks outbound requests may reach (see
//!   `outbound`).
//! - `WEFT_LOG_FORMAT`: `json` for JSON lines, anything else for text (read in `telemetry`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::rate_limit::Limits;
pub use crate::engine::config::EngineConfig;
pub use crate::http::config::HttpConfig;
pub use crate::http::origins::AllowedOrigins;
pub use crate::http::proxies::TrustedProxies;
pub use crate::outbound::OutboundConfig;
pub use crate::realtime::config::RealtimeConfig;
use crate::secrets::{self, Secret};
pub use crate::storage::{S3Config, StorageConfig};

/// Where the event bus lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisConfig {
    /// A Redis server shared by every instance.
    Url(String),
    /// An in-process bus: one instance only, nothing shared.
    Memory,
}

/// Limits every GraphQL document must stay within; over one, nothing is executed.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    pub max_depth: usize,
    /// Each field costs 1; a connection costs `first` (or `last`, default 20) times its
    /// selection.
    pub max_complexity: usize,
    pub max_directives: usize,
    /// Root fields of one query or mutation (a subscription has exactly one).
    pub max_root_fields: usize,
    pub introspection: bool,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_depth: 15,
            max_complexity: 25_000,
            max_directives: 50,
            max_root_fields: 10,
            introspection: true,
        }
    }
}

/// The typed configuration of one server process.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub database_pool_size: usize,
    /// How long a request waits for a pooled connection before failing.
    pub database_wait_timeout: Duration,
    pub redis: RedisConfig,
    pub redis_prefix: String,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// Where uploaded files' bytes are kept.
    pub storage: StorageConfig,
    pub jwt_secret: Secret,
    pub encryption_key: Secret,
    pub public_url: String,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    /// Failed logins allowed per email and per client address (README: "Limits").
    pub login_limits: Limits,
    pub api_limits: ApiLimits,
    /// How long a DataLoader waits to gather a batch.
    pub dataloader_delay: Duration,
    pub uploads: UploadLimits,
    pub realtime: RealtimeConfig,
    /// Browser origins allowed besides the server's own (CORS, WebSocket).
    pub allowed_origins: AllowedOrigins,
    /// Reverse proxies whose `X-Forwarded-For` gives the client address.
    pub trusted_proxies: TrustedProxies,
    /// What requests to URLs a workspace controls may reach.
    pub outbound: OutboundConfig,
    pub engine: EngineConfig,
    pub http: HttpConfig,
}

/// Sizes accepted over HTTP (README: "Limits").
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// The largest file of a multipart upload, in bytes (`WEFT_UPLOAD_MAX_BYTES`).
    pub max_file_bytes: usize,
    /// Files in one multipart request (`WEFT_UPLOAD_MAX_FILES`).
    pub max_files: usize,
    /// The largest request body that is not multipart, in bytes (`WEFT_MAX_REQUEST_BYTES`).
    pub max_request_bytes: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_file_bytes: 15 * 1024 * 1024,
            max_files: 5,
            max_request_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A configuration value that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/weft";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_MAIL_FROM: &str = "Weft <no-reply@localhost>";

impl Config {
    /// Reads the environment. Secrets that are not set are loaded from (or generated into)
    /// the data directory, so a restart keeps tokens valid and stored keys readable.
    pub fn from_env() -> Result<Config, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());

        let database_url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let database_pool_size = match var("DATABASE_POOL_SIZE") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    ConfigError(format!("DATABASE_POOL_SIZE must be 1 to 1000, got {v:?}"))
                })?,
            None => 16,
        };
        let redis = parse_redis(var("REDIS_URL").as_deref().unwrap_or(DEFAULT_REDIS_URL));
        let redis_prefix = var("WEFT_REDIS_PREFIX").unwrap_or_else(|| "weft:".into());
        let bind_text = var("WEFT_BIND").unwrap_or_else(|| DEFAULT_BIND.into());
        let bind = bind_text.parse::<SocketAddr>().map_err(|_| {
            ConfigError(format!(
                "WEFT_BIND must be an address and port such as 127.0.0.1:8080, got {bind_text:?}"
            ))
        })?;
        let data_dir = PathBuf::from(var("WEFT_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let storage = crate::storage::config::from_env(&var, &data_dir)?;

        let jwt_secret = match var("WEFT_JWT_SECRET") {
            Some(v) if v.len() >= 32 => Secret::new(v.into_bytes()),
            Some(_) => {
                return Err(ConfigError(
                    "WEFT_JWT_SECRET must be at least 32 characters".into(),
                ));
            }
            None => secrets::load_or_generate(&data_dir, "jwt_secret", "WEFT_JWT_SECRET")
                .map_err(|e| ConfigError(format!("cannot keep the JWT secret: {e}")))?,
        };
        let encryption_key = match var("WEFT_ENCRYPTION_KEY") {
            Some(v) => secrets::parse_key_hex(&v).ok_or_else(|| {
                ConfigError("WEFT_ENCRYPTION_KEY must be 64 hexadecimal characters".into())
            })?,
            None => secrets::load_or_generate(&data_dir, "encryption_key", "WEFT_ENCRYPTION_KEY")
                .map_err(|e| ConfigError(format!("cannot keep the encryption key: {e}")))?,
        };

        let public_url = var("WEFT_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}"));
        let smtp_url = var("WEFT_SMTP_URL").map(|v| Secret::new(v.into_bytes()));
        let mail_from = var("WEFT_MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.into());

        let number = |name: &str, default: usize| -> Result<usize, ConfigError> {
            match var(name) {
                Some(v) => v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ConfigError(format!("{name} must be a positive number, got {v:?}"))
                }),
                None => Ok(default),
            }
        };
        let defaults = ApiLimits::default();
        let api_limits = ApiLimits {
            max_depth: number("WEFT_MAX_DEPTH", defaults.max_depth)?,
            max_complexity: number("WEFT_MAX_COMPLEXITY", defaults.max_complexity)?,
            max_directives: number("WEFT_MAX_DIRECTIVES", defaults.max_directives)?,
            max_root_fields: number("WEFT_MAX_ROOT_FIELDS", defaults.max_root_fields)?,
            introspection: match var("WEFT_INTROSPECTION").as_deref() {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => {
                    return Err(ConfigError(format!(
                        "WEFT_INTROSPECTION must be true or false, got {v:?}"
                    )));
                }
            },
        };

        let upload_defaults = UploadLimits::default();
        let uploads = UploadLimits {
            max_file_bytes: number("WEFT_UPLOAD_MAX_BYTES", upload_defaults.max_file_bytes)?,
            max_files: number("WEFT_UPLOAD_MAX_FILES", upload_defaults.max_files)?,
            max_request_bytes: number("WEFT_MAX_REQUEST_BYTES", upload_defaults.max_request_bytes)?,
        };

        let dataloader_delay = match var("WEFT_DATALOADER_DELAY_MS") {
            Some(v) => {
                Duration::from_millis(v.parse::<u64>().ok().filter(|n| *n <= 1000).ok_or_else(
                    || {
                        ConfigError(format!(
                            "WEFT_DATALOADER_DELAY_MS must be 0 to 1000, got {v:?}"
                        ))
                    },
                )?)
            }
            // Batches stay whole without a wait: a loader runs its batch only after every
            // field resolved in the same poll has asked for its keys (BENCHMARKS.md).
            None => Duration::ZERO,
        };

        let realtime = RealtimeConfig::from_vars(var).map_err(ConfigError)?;
        let allowed_origins = AllowedOrigins::from_vars(var);
        let trusted_proxies = TrustedProxies::from_vars(var).map_err(ConfigError)?;
        let outbound = OutboundConfig::from_vars(var).map_err(ConfigError)?;
        let engine = EngineConfig::from_vars(var).map_err(ConfigError)?;
        let http = HttpConfig::from_vars(var).map_err(ConfigError)?;

        Ok(Config {
            database_url,
            database_pool_size,
            database_wait_timeout: Duration::from_secs(5),
            redis,
            redis_prefix,
            bind,
            data_dir,
            storage,
            jwt_secret,
            encryption_key,
            public_url,
            smtp_url,
            mail_from,
            login_limits: Limits::default(),
            api_limits,
            dataloader_delay,
            uploads,
            realtime,
            allowed_origins,
            trusted_proxies,
            outbound,
            engine,
            http,
        })
    }

    /// A configuration for tests: the given database and Redis, a data directory of the
    /// test's own, fixed secrets, and an ephemeral port.
    pub fn for_test(
        database_url: &str,
        redis: RedisConfig,
        redis_prefix: &str,
        data_dir: &Path,
    ) -> Config {
        Config {
            database_url: database_url.into(),
            database_pool_size: 8,
            database_wait_timeout: Duration::from_secs(5),
            redis,
            redis_prefix: redis_prefix.into(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            storage: StorageConfig::Local(data_dir.join("files")),
            jwt_secret: Secret::new(b"test-jwt-secret-of-at-least-32-bytes".to_vec()),
            encryption_key: Secret::new(vec![7u8; 32]),
            public_url: "http://weft.test".into(),
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.into(),
            login_limits: Limits::default(),
            api_limits: ApiLimits::default(),
            dataloader_delay: Duration::ZERO,
            uploads: UploadLimits::default(),
            realtime: RealtimeConfig::default(),
            allowed_origins: AllowedOrigins::default(),
            trusted_proxies: TrustedProxies::default(),
            // Tests talk to model and HTTP servers of their own on this machine; tests of the
            // guard itself set this back to nothing.
            outbound: OutboundConfig {
                allowed: ["127.0.0.0/8", "::1"]
                    .into_iter()
                    .filter_map(crate::outbound::Network::parse)
                    .collect(),
            },
            engine: EngineConfig {
                echo_pace: Duration::ZERO,
                demo: false,
                ..EngineConfig::default()
            },
            http: HttpConfig::default(),
        }
    }
}

/// `memory` selects the in-process bus; anything else is a Redis URL.
pub fn parse_redis(value: &str) -> RedisConfig {
    if value.eq_ignore_ascii_case("memory") {
        RedisConfig::Memory
    } else {
        RedisConfig::Url(value.to_string())
    }
}

/// A URL with its password replaced, safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://weft:hunter2@db:5432/weft"),
            "postgres://weft:***@db:5432/weft"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/weft"),
            "postgres://postgres@127.0.0.1/weft"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
    }

    #[test]
    fn memory_selects_the_in_process_bus() {
        assert_eq!(parse_redis("memory"), RedisConfig::Memory);
        assert_eq!(
            parse_redis("redis://127.0.0.1:6379"),
            RedisConfig::Url("redis://127.0.0.1:6379".into())
        );
    }
}
