//! Real time: the event bus (Redis shared by every instance, or this process alone when
//! `REDIS_URL=memory`), replayable streams of messages and executions, and the one place
//! producers publish through (`Realtime::publish_*`).
//!
//! - `bus`: one pub/sub connection per process, fanned out to subscribers in bounded channels.
//! - `streams`: numbering, retention and publication of stream events (one Lua script).
//! - `replay`: a subscriber's view of a stream from `after`, with no gap and no repeat.
//! - `events`: what travels.
//! - `history`: what a producer published, to put back a stream Redis lost.
//! - `woken`: a wait polled only when its signal woke it (shutdown, ended rights, a
//!   WebSocket client's next message).

pub mod bus;
pub mod config;
pub mod events;
pub mod history;
mod producer;
pub mod replay;
pub mod streams;
pub mod woken;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::{RedisConfig, redact_url};
use crate::error::AppResult;
use crate::metrics::Metrics;
use bus::Bus;
use streams::{Names, Retention, StreamStore};

pub use config::RealtimeConfig;

/// The real-time layer of this process. Cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    pub bus: Bus,
    store: Arc<StreamStore>,
    names: Names,
    retention: Retention,
    /// Publishes feed events (Redis), `None` in memory.
    commands: Option<ConnectionManager>,
    metrics: Arc<Metrics>,
    /// How long a producer's last events are tried while Redis does not answer.
    pub publish_patience: Duration,
}

impl Realtime {
    /// The bus and stream store over `broker`.
    pub fn new(
        broker: &Broker,
        config: &RealtimeConfig,
        prefix: &str,
        metrics: Arc<Metrics>,
    ) -> Realtime {
        let (bus, store, commands) = match broker {
            Broker::Redis { client, commands } => (
                Bus::redis(client.clone(), config.fanout_buffer),
                StreamStore::redis(commands.clone()),
                Some(commands.clone()),
            ),
            Broker::Memory => (
                Bus::memory(config.fanout_buffer),
                StreamStore::memory(),
                None,
            ),
        };
        Realtime {
            bus,
            store: Arc::new(store),
            names: Names {
                prefix: prefix.to_string(),
            },
            retention: Retention {
                ttl: config.stream_retention,
                max_events: config.stream_max_events,
            },
            commands,
            metrics,
            publish_patience: config.publish_patience,
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The text a message's retained stream holds so far (its DELTAs applied, REPLACEs
    /// honoured), and its last `seq`: what a reply had streamed when its instance died.
    /// Empty when nothing is retained.
    pub async fn streamed_text(&self, message_id: uuid::Uuid) -> AppResult<(String, i64)> {
        use events::{Event, MessageEventKind};
        let key = streams::StreamKey::Message(message_id);
        let mut text = String::new();
        let mut last = 0;
        loop {
            let retained = self.store.read_after(&self.names, key, last).await?;
            let full = retained.events.len() >= streams::PAGE;
            for event in &retained.events {
                last = event.seq();
                if let Event::Message(e) = event.as_ref() {
                    match e.kind {
                        MessageEventKind::Delta => text.push_str(e.delta.as_deref().unwrap_or("")),
                        MessageEventKind::Replace => {
                            text = e.text.clone().unwrap_or_default();
                        }
                        _ => {}
                    }
                }
            }
            if !full {
                return Ok((text, last));
            }
        }
    }

    /// What the stream of `key` holds: its last `seq` (`None`: nothing retained) and its
    /// final one, once it ended.
    pub async fn stream_state(
        &self,
        key: streams::StreamKey,
    ) -> AppResult<(Option<i64>, Option<i64>)> {
        let retained = self
            .store
            .read_after(&self.names, key, i64::MAX / 2)
            .await?;
        Ok((retained.last_seq, retained.end_seq))
    }

    /// Counts a subscriber caught up from the retained stream (it fell behind the fan-out
    /// buffer, or the bus reconnected).
    pub(crate) fn caught_up(&self) {
        self.metrics
            .stream_catchups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The bus this process publishes to and subscribes from.
#[derive(Clone)]
pub enum Broker {
    /// Redis: commands go through a multiplexed connection that reconnects by itself.
    Redis {
        client: redis::Client,
        commands: ConnectionManager,
    },
    /// One process only: nothing leaves it.
    Memory,
}

/// The state of a component as `/readyz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentHealth {
    Ok,
    Down,
    Memory,
}

/// Redis could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach Redis at {url}: {source}")]
pub struct BrokerError {
    pub url: String,
    pub source: redis::RedisError,
}

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

impl Broker {
    /// Connects to Redis (answering a PING) or selects the in-process bus.
    pub async fn connect(config: &RedisConfig) -> Result<Broker, BrokerError> {
        let url = match config {
            RedisConfig::Memory => return Ok(Broker::Memory),
            RedisConfig::Url(url) => url,
        };
        let fail = |source| BrokerError {
            url: redact_url(url),
            source,
        };
        let client = redis::Client::open(url.as_str()).map_err(fail)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let mut commands = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(fail)?;
        redis::cmd("PING")
            .query_async::<String>(&mut commands)
            .await
            .map_err(fail)?;
        Ok(Broker::Redis { client, commands })
    }

    /// Whether the bus answers now (a PING within two seconds).
    pub async fn health(&self) -> ComponentHealth {
        match self {
            Broker::Memory => ComponentHealth::Memory,
            Broker::Redis { commands, .. } => {
                let mut conn = commands.clone();
                let ping = redis::cmd("PING");
                match tokio::time::timeout(RESPONSE_TIMEOUT, ping.query_async::<String>(&mut conn))
                    .await
                {
                    Ok(Ok(_)) => ComponentHealth::Ok,
                    _ => ComponentHealth::Down,
                }
            }
        }
    }
}
