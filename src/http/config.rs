//! Settings of the HTTP surface, read from the environment:
//!
//! - `WEFT_HEADER_READ_TIMEOUT_SECS` (10): a client must send a request's headers within
//!   this, or its connection is closed.
//! - `WEFT_REQUEST_TIMEOUT_SECS` (30): the longest a query or mutation over HTTP may run
//!   (subscriptions, SSE and WebSockets excepted); past it the answer is an INTERNAL error
//!   with HTTP 503.
//! - `WEFT_SHUTDOWN_DELAY_SECS` (0): on SIGTERM, how long the instance goes on serving
//!   with `/readyz` answering 503 (so a load balancer takes it out first) before it stops
//!   accepting connections and ends live streams.
//! - `WEFT_MAX_CONNECTIONS_PER_USER` (64) and `WEFT_MAX_CONNECTIONS_PER_ADDRESS` (256):
//!   live connections (WebSockets and SSE responses together) one caller, and one client
//!   address, may hold open on an instance; past them a socket is closed with 4429 and an
//!   SSE request answered RATE_LIMITED.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_delay: Duration,
    pub max_connections_per_user: usize,
    pub max_connections_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            max_connections_per_user: 64,
            max_connections_per_address: 256,
        }
    }
}

impl HttpConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HttpConfig, String> {
        let defaults = HttpConfig::default();
        let whole = |name: &str, default: u64, zero_ok: bool| {
            crate::validate::setting(&var, name, default, zero_ok)
        };
        let number = |name: &str, default: u64| whole(name, default, false);
        Ok(HttpConfig {
            header_read_timeout: Duration::from_secs(number(
                "WEFT_HEADER_READ_TIMEOUT_SECS",
                defaults.header_read_timeout.as_secs(),
            )?),
            request_timeout: Duration::from_secs(number(
                "WEFT_REQUEST_TIMEOUT_SECS",
                defaults.request_timeout.as_secs(),
            )?),
            shutdown_delay: Duration::from_secs(whole(
                "WEFT_SHUTDOWN_DELAY_SECS",
                defaults.shutdown_delay.as_secs(),
                true,
            )?),
            max_connections_per_user: number(
                "WEFT_MAX_CONNECTIONS_PER_USER",
                defaults.max_connections_per_user as u64,
            )? as usize,
            max_connections_per_address: number(
                "WEFT_MAX_CONNECTIONS_PER_ADDRESS",
                defaults.max_connections_per_address as u64,
            )? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_checked() {
        let config = HttpConfig::from_vars(|name| {
            (name == "WEFT_HEADER_READ_TIMEOUT_SECS").then(|| "3".to_string())
        })
        .unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        let refused = HttpConfig::from_vars(|name| {
            (name == "WEFT_MAX_CONNECTIONS_PER_USER").then(|| "0".to_string())
        });
        assert!(
            refused
                .unwrap_err()
                .contains("WEFT_MAX_CONNECTIONS_PER_USER")
        );
    }
}
