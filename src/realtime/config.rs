//! Settings of streams and live connections, read from the environment:
//!
//! - `WEFT_STREAM_RETENTION_SECS` (86400): how long a message's or execution's events stay
//!   replayable after its last event (so 24 h after its end).
//! - `WEFT_STREAM_MAX_EVENTS` (100000): the most events one stream keeps.
//! - `WEFT_MAX_SUBSCRIPTIONS` (100): subscriptions one WebSocket connection may hold.
//! - `WEFT_SEND_TIMEOUT_SECS` (30): a connection that takes longer to accept one frame is
//!   closed; the client resumes with `after`.
//! - `WEFT_SHUTDOWN_TIMEOUT` (10): seconds given to connections to close on SIGTERM/SIGINT.
//! - `WEFT_PUBLISH_PATIENCE_SECS` (30): how long a finished reply or run keeps trying to
//!   publish its last events while Redis does not answer; a stream left without its end then
//!   is ended from PostgreSQL by any instance once Redis answers (after twice this).

use std::time::Duration;

/// Limits and lifetimes of the real-time layer.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub stream_retention: Duration,
    pub stream_max_events: usize,
    pub max_subscriptions_per_connection: usize,
    pub send_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub publish_patience: Duration,
    /// A WebSocket that has not sent `connection_init` within this is closed with 4408.
    pub init_timeout: Duration,
    /// Events buffered per stream in this process for subscribers that are behind; one
    /// further behind is caught up from the retained stream. Allocated per stream with a
    /// subscriber (about 48 bytes an event), so it stays small.
    pub fanout_buffer: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            stream_retention: Duration::from_secs(24 * 3600),
            stream_max_events: 100_000,
            max_subscriptions_per_connection: 100,
            send_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            publish_patience: Duration::from_secs(30),
            init_timeout: Duration::from_secs(10),
            fanout_buffer: 256,
        }
    }
}

impl RealtimeConfig {
    /// Reads the variables above through `var`, refusing values that are not numbers.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<RealtimeConfig, String> {
        let defaults = RealtimeConfig::default();
        let number =
            |name: &str, default: u64| crate::validate::setting(&var, name, default, false);
        Ok(RealtimeConfig {
            stream_retention: Duration::from_secs(number(
                "WEFT_STREAM_RETENTION_SECS",
                defaults.stream_retention.as_secs(),
            )?),
            stream_max_events: number("WEFT_STREAM_MAX_EVENTS", defaults.stream_max_events as u64)?
                as usize,
            max_subscriptions_per_connection: number(
                "WEFT_MAX_SUBSCRIPTIONS",
                defaults.max_subscriptions_per_connection as u64,
            )? as usize,
            send_timeout: Duration::from_secs(number(
                "WEFT_SEND_TIMEOUT_SECS",
                defaults.send_timeout.as_secs(),
            )?),
            shutdown_timeout: Duration::from_secs(number(
                "WEFT_SHUTDOWN_TIMEOUT",
                defaults.shutdown_timeout.as_secs(),
            )?),
            publish_patience: Duration::from_secs(number(
                "WEFT_PUBLISH_PATIENCE_SECS",
                defaults.publish_patience.as_secs(),
            )?),
            init_timeout: defaults.init_timeout,
            fanout_buffer: defaults.fanout_buffer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_are_refused_with_the_variable_named() {
        let vars = |name: &str| (name == "WEFT_MAX_SUBSCRIPTIONS").then(|| "lots".into());
        let error = RealtimeConfig::from_vars(vars).expect_err("refused");
        assert!(error.contains("WEFT_MAX_SUBSCRIPTIONS"), "{error}");
    }
}
