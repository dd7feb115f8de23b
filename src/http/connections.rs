//! Live connections (WebSockets and SSE responses together) held open on this instance, per
//! client address and per caller: past `WEFT_MAX_CONNECTIONS_PER_ADDRESS` or
//! `WEFT_MAX_CONNECTIONS_PER_USER` a new one is refused. Counted per instance: a load
//! balancer spreads one client's connections, and a dead instance takes its counts with it.
//! A builder is counted by user, an end user by end user; API keys (an application's own
//! backend, which may relay many end users) are counted by address only.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::auth::Actor;

/// The counts of one instance.
#[derive(Default)]
pub struct LiveConnections {
    by_address: Counter<String>,
    by_caller: Counter<Uuid>,
}

/// A place taken; given back when dropped.
pub struct Slot {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Slot {
    /// A place that counts nothing.
    pub fn none() -> Slot {
        Slot { release: None }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

struct Counter<K> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Counter {
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Counter<K> {
    fn take(&self, key: K, max: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        let counts = self.counts.clone();
        Some(Slot {
            release: Some(Box::new(move || {
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(count) = counts.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(&key);
                    }
                }
            })),
        })
    }
}

impl LiveConnections {
    /// A place for one more connection from `address`, or `None` past `max`.
    pub fn for_address(&self, address: Option<&str>, max: usize) -> Option<Slot> {
        let address = address.unwrap_or("unknown").to_string();
        self.by_address.take(address, max)
    }

    /// A place for one more connection of `actor`, or `None` past `max`. API keys are not
    /// counted here (their address is).
    pub fn for_caller(&self, actor: Actor, max: usize) -> Option<Slot> {
        let caller = match actor {
            Actor::User { user_id } => user_id,
            Actor::EndUser { end_user_id, .. } => end_user_id,
            Actor::ApiKey { .. } => return Some(Slot::none()),
        };
        self.by_caller.take(caller, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_and_given_back() {
        let live = LiveConnections::default();
        let user = Actor::User {
            user_id: Uuid::new_v4(),
        };
        let first = live.for_caller(user, 2).expect("a place");
        let second = live.for_caller(user, 2).expect("a place");
        assert!(live.for_caller(user, 2).is_none(), "full");
        drop(first);
        let third = live.for_caller(user, 2).expect("a place given back");
        let other = Actor::User {
            user_id: Uuid::new_v4(),
        };
        assert!(live.for_caller(other, 2).is_some(), "counted per caller");
        drop((second, third));
        assert!(live.by_caller.counts.lock().unwrap().is_empty());

        let a = live.for_address(Some("10.0.0.1"), 1).expect("a place");
        assert!(live.for_address(Some("10.0.0.1"), 1).is_none());
        assert!(live.for_address(Some("10.0.0.2"), 1).is_some());
        drop(a);
        assert!(live.for_address(Some("10.0.0.1"), 1).is_some());
    }
}
