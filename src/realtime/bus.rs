//! The event bus of this process: one broadcast channel per topic (a Redis channel name),
//! fed by one Redis pub/sub connection shared by every topic, or by publishers in this
//! process when the bus is in memory.
//!
//! A subscriber is told when its topic is subscribed in Redis (so whatever is published
//! from then on reaches it), gets `Resync` after the pub/sub connection was lost and
//! re-established (events published meanwhile must be read back from the retained
//! stream), and sees `Lagged` from its bounded channel when it fell behind. Events are
//! parsed once per process, not once per subscriber.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};

use super::events::Event;

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Event>),
    /// The bus may have missed events: read the retained stream again.
    Resync,
}

/// Why a subscriber stops receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// It fell further behind than the channel holds; events were dropped for it.
    Lagged,
    /// The bus is gone (the process is stopping).
    Closed,
}

/// The bus of this process. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<String, Topic>>,
    capacity: usize,
    /// Where subscribe and unsubscribe commands go (Redis); `None` in memory.
    redis: Option<mpsc::UnboundedSender<Command>>,
}

struct Topic {
    sender: broadcast::Sender<Delivery>,
    ready: watch::Sender<bool>,
    subscribers: usize,
}

enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

/// A subscriber of one topic; unsubscribes when dropped.
pub struct Subscription {
    channel: String,
    receiver: broadcast::Receiver<Delivery>,
    inner: Arc<Inner>,
}

impl Subscription {
    /// The next delivery, or why there is none.
    pub async fn recv(&mut self) -> Result<Delivery, Missed> {
        match self.receiver.recv().await {
            Ok(delivery) => Ok(delivery),
            Err(broadcast::error::RecvError::Lagged(_)) => Err(Missed::Lagged),
            Err(broadcast::error::RecvError::Closed) => Err(Missed::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut topics = self.inner.lock();
        let gone = match topics.get_mut(&self.channel) {
            Some(topic) => {
                topic.subscribers = topic.subscribers.saturating_sub(1);
                topic.subscribers == 0
            }
            None => false,
        };
        if gone {
            topics.remove(&self.channel);
            // Sent under the lock: a new topic of the same name queues its SUBSCRIBE after
            // this UNSUBSCRIBE, and the connection task runs them in order.
            if let Some(commands) = &self.inner.redis {
                let _ = commands.send(Command::Unsubscribe(self.channel.clone()));
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock leaves the map consistent (no multi-step updates).
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dispatch(&self, channel: &str, delivery: Delivery) {
        if let Some(topic) = self.lock().get(channel) {
            // No receiver left is not an error: the topic is about to be removed.
            let _ = topic.sender.send(delivery);
        }
    }

    fn mark_ready(&self, channel: &str) {
        if let Some(topic) = self.lock().get(channel) {
            topic.ready.send_replace(true);
        }
    }
}

impl Bus {
    /// A bus for this process alone.
    pub fn memory(capacity: usize) -> Bus {
        Bus {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                capacity,
                redis: None,
            }),
        }
    }

    /// A bus over Redis pub/sub: one connection for every topic, re-established with
    /// backoff when lost, every topic subscribed again and told to resync.
    pub fn redis(client: redis::Client, capacity: usize) -> Bus {
        let (commands, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            topics: Mutex::new(HashMap::new()),
            capacity,
            redis: Some(commands),
        });
        tokio::spawn(run_connection(client, Arc::downgrade(&inner), receiver));
        Bus { inner }
    }

    /// Subscribes to `channel`, returning once the bus delivers what is published on it
    /// from now on (while Redis is away, that waits for it to come back).
    pub async fn subscribe(&self, channel: &str) -> Subscription {
        let (receiver, mut ready) = {
            let mut topics = self.inner.lock();
            let topic = topics.entry(channel.to_string()).or_insert_with(|| {
                let (sender, _) = broadcast::channel(self.inner.capacity);
                let (ready, _) = watch::channel(self.inner.redis.is_none());
                if let Some(commands) = &self.inner.redis {
                    let _ = commands.send(Command::Subscribe(channel.to_string()));
                }
                Topic {
                    sender,
                    ready,
                    subscribers: 0,
                }
            });
            topic.subscribers += 1;
            (topic.sender.subscribe(), topic.ready.subscribe())
        };
        let subscription = Subscription {
            channel: channel.to_string(),
            receiver,
            inner: self.inner.clone(),
        };
        // The sender lives as long as the topic, which this subscription keeps.
        let _ = ready.wait_for(|ready| *ready).await;
        subscription
    }

    /// Delivers an event published in this process (the in-memory bus).
    pub fn deliver(&self, channel: &str, event: Arc<Event>) {
        self.inner.dispatch(channel, Delivery::Event(event));
    }
}

const PING_EVERY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The pub/sub connection's life: connect, subscribe every topic, relay messages and
/// commands; on any failure, reconnect with backoff (100 ms doubling to 5 s).
async fn run_connection(
    client: redis::Client,
    inner: std::sync::Weak<Inner>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        let Some(bus) = inner.upgrade() else { return };
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot open the Redis pub/sub connection; retrying");
                drop(bus);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                tracing::warn!("the Redis pub/sub connection timed out; retrying");
                drop(bus);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let (mut sink, mut messages) = pubsub.split();
        let channels: Vec<String> = bus.lock().keys().cloned().collect();
        let mut subscribed = true;
        for channel in &channels {
            if let Err(e) = sink.subscribe(channel).await {
                tracing::warn!(error = %e, "cannot subscribe on Redis; reconnecting");
                subscribed = false;
                break;
            }
            bus.mark_ready(channel);
        }
        if !subscribed {
            drop(bus);
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        if !first {
            tracing::info!(topics = channels.len(), "Redis pub/sub connection restored");
            for channel in &channels {
                bus.dispatch(channel, Delivery::Resync);
            }
        }
        first = false;
        drop(bus);

        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let Some(bus) = inner.upgrade() else { return };
                    let channel = message.get_channel_name();
                    match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
                        Ok(event) => bus.dispatch(channel, Delivery::Event(Arc::new(event))),
                        Err(e) => tracing::error!(error = %e, channel, "unreadable event on the bus"),
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return };
                    let done = match &command {
                        Command::Subscribe(channel) => sink.subscribe(channel).await,
                        Command::Unsubscribe(channel) => sink.unsubscribe(channel).await,
                    };
                    match done {
                        Ok(()) => {
                            if let (Command::Subscribe(channel), Some(bus)) = (&command, inner.upgrade()) {
                                bus.mark_ready(channel);
                            }
                        }
                        // The topic still exists, so the resubscription after reconnecting
                        // covers it.
                        Err(_) => break,
                    }
                }
                _ = ping.tick() => {
                    // Subscribed, Redis answers PING with an array (`pong`, ""): any value
                    // will do, only silence or an error means the connection is gone.
                    let answered = tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        let Some(bus) = inner.upgrade() else { return };
        // New subscribers wait for the resubscription instead of trusting a dead connection.
        for topic in bus.lock().values() {
            topic.ready.send_replace(false);
        }
        tracing::warn!("the Redis pub/sub connection was lost; reconnecting");
        drop(bus);
        tokio::time::sleep(backoff).await;
    }
}
