//! Following one stream from `after`: subscribe live first, then read what is retained
//! after `after`, then go on live, dropping what was already delivered by `seq`. Whenever
//! the live side may have missed something (a gap in `seq`, the subscriber fell behind, the
//! bus reconnected), the retained stream is read again. So every event arrives once and in
//! order, whatever the timing; and if the retained stream itself lost events (expired or
//! trimmed), the subscriber gets an error saying so rather than a silent gap, unless the
//! next event states everything before it (a REPLACE or END re-seeding a stream that Redis
//! lost), which is delivered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::Stream;

use super::Realtime;
use super::bus::{Delivery, Missed, Subscription};
use super::events::Event;
use super::streams::{PAGE, StreamKey};
use crate::error::{AppError, AppResult};

/// How long a subscriber waits for the retained stream to become readable again (Redis
/// restarting) before giving up with an error; the client can then resume with `after`.
const STORE_PATIENCE: Duration = Duration::from_secs(30);

struct Replay {
    realtime: Realtime,
    key: StreamKey,
    live: Subscription,
    pending: VecDeque<Arc<Event>>,
    /// How many of `pending`, from its front, were read from the retained stream (the rest
    /// came live from the bus).
    retained: usize,
    /// The last `seq` delivered (or skipped by `after`).
    last: i64,
    end_seq: Option<i64>,
    /// The last read filled a page: more may be retained.
    more: bool,
    /// The subject's final state from PostgreSQL as one terminal event, when it has
    /// finished: what an expired stream is replaced by.
    final_state: Option<Event>,
    started: bool,
    done: bool,
}

/// An event of a followed stream, and whether it came live from the bus (not read back from
/// the retained stream, nor the subject's final state).
pub struct Followed {
    pub event: Arc<Event>,
    pub live: bool,
}

/// The events of `key` after `after`, ending after its final event.
pub async fn follow(
    realtime: &Realtime,
    key: StreamKey,
    after: i64,
    final_state: Option<Event>,
) -> impl Stream<Item = AppResult<Followed>> + Send + use<> {
    let live = realtime.bus.subscribe(&realtime.names.channel(key)).await;
    let replay = Replay {
        realtime: realtime.clone(),
        key,
        live,
        pending: VecDeque::new(),
        retained: 0,
        last: after.max(0),
        end_seq: None,
        more: false,
        final_state,
        started: false,
        done: false,
    };
    futures_util::stream::unfold(replay, |mut replay| async move {
        let item = replay.next().await?;
        Some((item, replay))
    })
}

impl Replay {
    /// (`refill` is boxed where it is awaited: this future lives in the subscription's
    /// stream while it waits for the bus, and a read of Redis is large beside that wait.)
    async fn next(&mut self) -> Option<AppResult<Followed>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            let known = match Box::pin(self.refill()).await {
                Ok(known) => known,
                Err(e) => return self.fail(e),
            };
            if !known && let Some(mut event) = self.final_state.take() {
                // Expired (or never retained): one terminal event with the stored state, at
                // the seq the stream ended at when that is known and after `after`.
                let seq = event.seq().max(self.last + 1);
                set_seq(&mut event, seq);
                self.done = true;
                return Some(Ok(Followed {
                    event: Arc::new(event),
                    live: false,
                }));
            }
        }
        loop {
            while let Some(event) = self.pending.pop_front() {
                let live = self.retained == 0;
                self.retained = self.retained.saturating_sub(1);
                let seq = event.seq();
                if seq <= self.last {
                    continue;
                }
                if seq > self.last + 1 && !event.states_everything() {
                    // Something was missed live: the retained stream has it.
                    if let Err(e) = Box::pin(self.refill()).await {
                        return self.fail(e);
                    }
                    // A stream that lost its data was re-seeded by an event that states
                    // everything (a REPLACE, the END): nothing of the result is missing.
                    if self.pending.front().is_none_or(|first| {
                        first.seq() > self.last + 1 && !first.states_everything()
                    }) {
                        return self.fail(AppError::Conflict(format!(
                            "the events after seq {} are no longer retained; subscribe \
                             without `after` for the final state",
                            self.last
                        )));
                    }
                    continue;
                }
                self.last = seq;
                if event.is_terminal() {
                    self.done = true;
                }
                return Some(Ok(Followed { event, live }));
            }
            if self.end_seq.is_some_and(|end| end <= self.last) {
                self.done = true;
                return None;
            }
            if self.more {
                if let Err(e) = Box::pin(self.refill()).await {
                    return self.fail(e);
                }
                continue;
            }
            match self.live.recv().await {
                Ok(Delivery::Event(event)) => self.pending.push_back(event),
                Ok(Delivery::Resync) | Err(Missed::Lagged) => {
                    self.realtime.caught_up();
                    if let Err(e) = Box::pin(self.refill()).await {
                        return self.fail(e);
                    }
                }
                Err(Missed::Closed) => {
                    return self.fail(AppError::internal("the event bus closed"));
                }
            }
        }
    }

    /// Replaces what is pending with the retained events after the last delivered one;
    /// returns whether the stream is known. Waits out a Redis restart.
    async fn refill(&mut self) -> AppResult<bool> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        let retained = loop {
            match self
                .realtime
                .store
                .read_after(&self.realtime.names, self.key, self.last)
                .await
            {
                Ok(retained) => break retained,
                Err(e) if started.elapsed() < STORE_PATIENCE => {
                    tracing::debug!(error = ?e, "the retained stream is unreadable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        };
        self.more = retained.events.len() >= PAGE;
        self.end_seq = retained.end_seq;
        let known = retained.last_seq.is_some();
        if retained.events.is_empty() && retained.last_seq.is_some_and(|last| last > self.last) {
            return Err(AppError::Conflict(format!(
                "the events after seq {} are no longer retained; subscribe without `after` \
                 for the final state",
                self.last
            )));
        }
        self.pending = retained.events.into();
        self.retained = self.pending.len();
        Ok(known)
    }

    fn fail(&mut self, error: AppError) -> Option<AppResult<Followed>> {
        self.done = true;
        Some(Err(error))
    }
}

fn set_seq(event: &mut Event, seq: i64) {
    match event {
        Event::Message(e) => e.seq = seq,
        Event::Execution(e) => e.seq = seq,
        _ => {}
    }
}
