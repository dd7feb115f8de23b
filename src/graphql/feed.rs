//! Following a feed (a workspace's runs, a conversation's messages): changes as the bus
//! delivers them and, when the bus reconnected (Redis restarted, a failover) or this
//! subscriber fell behind, what changed meanwhile read from PostgreSQL, so a dashboard never
//! keeps a stale status. A feed may start with the current state of what it follows (a
//! workspace's active runs), read after the live side is in place. Each change is delivered
//! once and in order: a row whose `updated_at` is not newer than the one already delivered
//! for it is skipped, live or read back.

use std::collections::{HashMap, VecDeque};

use async_graphql::Result;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::db::models::{ExecutionRecord, Message};
use crate::error::AppResult;
use crate::realtime::bus::{Delivery, Missed, Subscription as BusSubscription};
use crate::realtime::events::Event;

/// How far back a catch-up reads beyond the last one: the database's clock and this
/// process's may differ a little.
const MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);
/// Rows remembered as delivered; past it the memory starts again (a row may then come
/// twice, never not at all).
const REMEMBERED: usize = 10_000;

/// A row a feed carries.
pub trait FeedItem: Send + 'static {
    fn id(&self) -> Uuid;
    fn updated_at(&self) -> DateTime<Utc>;
}

impl FeedItem for ExecutionRecord {
    fn id(&self) -> Uuid {
        self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl FeedItem for Message {
    fn id(&self) -> Uuid {
        self.id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// Reads the rows changed at or after a moment.
pub type CatchUp<T> = Box<dyn Fn(DateTime<Utc>) -> BoxFuture<'static, AppResult<Vec<T>>> + Send>;

struct Follower<T> {
    feed: BusSubscription,
    pick: fn(&Event) -> Option<T>,
    catch_up: CatchUp<T>,
    delivered: HashMap<Uuid, DateTime<Utc>>,
    queue: VecDeque<T>,
    /// Changes from here on may not have been delivered yet.
    since: DateTime<Utc>,
}

/// The feed's rows of one kind: `start` first (read after `feed` was subscribed, so nothing
/// falls between them), then live, caught up from PostgreSQL after each interruption.
pub fn follow<T: FeedItem>(
    feed: BusSubscription,
    pick: fn(&Event) -> Option<T>,
    catch_up: CatchUp<T>,
    start: Vec<T>,
    since: DateTime<Utc>,
) -> impl Stream<Item = Result<T>> + Send + 'static {
    let mut follower = Follower {
        feed,
        pick,
        catch_up,
        delivered: HashMap::new(),
        queue: VecDeque::new(),
        since: since - MARGIN,
    };
    for row in start {
        if follower.fresh(&row) {
            follower.queue.push_back(row);
        }
    }
    futures_util::stream::unfold(follower, |mut follower| async move {
        let item = follower.next().await?;
        Some((Ok(item), follower))
    })
}

impl<T: FeedItem> Follower<T> {
    async fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            match self.feed.recv().await {
                Ok(Delivery::Event(event)) => {
                    // A change the start (or a catch-up) already showed, or an older state
                    // announced late, is not shown again.
                    if let Some(item) = (self.pick)(&event)
                        && self.fresh(&item)
                    {
                        return Some(item);
                    }
                }
                Ok(Delivery::Resync) | Err(Missed::Lagged) => self.catch_up().await,
                Err(Missed::Closed) => return None,
            }
        }
    }

    fn remember(&mut self, item: &T) {
        if self.delivered.len() >= REMEMBERED {
            self.delivered.clear();
        }
        let at = self.delivered.entry(item.id()).or_insert(item.updated_at());
        *at = (*at).max(item.updated_at());
    }

    /// Whether a row read back is newer than what was delivered of it; remembers it if so.
    fn fresh(&mut self, item: &T) -> bool {
        let newer = self
            .delivered
            .get(&item.id())
            .is_none_or(|at| item.updated_at() > *at);
        if newer {
            self.remember(item);
        }
        newer
    }

    async fn catch_up(&mut self) {
        let from = self.since;
        let now = Utc::now();
        match (self.catch_up)(from).await {
            Ok(rows) => {
                for row in rows {
                    if self.fresh(&row) {
                        self.queue.push_back(row);
                    }
                }
                self.since = now - MARGIN;
            }
            // Tried again at the next interruption, from the same moment.
            Err(e) => tracing::warn!(error = %e, "cannot catch a feed up"),
        }
    }
}
