//! What a stream's producer published, kept in this process so that a stream Redis lost
//! (restarted without persistence, a failover to an empty replica) can be put back as it
//! was numbered: subscribers that had not read it yet get it, and `seq` goes on without a
//! gap.

use std::collections::VecDeque;
use std::sync::Arc;

use super::events::Event;

/// The published events kept to restore a stream Redis lost, in encoded bytes; past it the
/// oldest are let go (the stream is then restored from a later event, as a trimmed one).
const HISTORY_BYTES: usize = 8 << 20;

/// What a producer published, to put back if the stream loses its data.
#[derive(Default)]
pub struct History {
    events: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
    /// The oldest events were let go: a stream put back from it starts later.
    trimmed: bool,
}

impl History {
    pub fn push(&mut self, event: Arc<Event>) {
        let size = serde_json::to_vec(event.as_ref()).map_or(0, |b| b.len());
        self.bytes += size;
        self.events.push_back((event, size));
        while self.bytes > HISTORY_BYTES && self.events.len() > 1 {
            if let Some((_, size)) = self.events.pop_front() {
                self.bytes -= size;
                self.trimmed = true;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether it holds every event published since the first.
    pub fn whole(&self) -> bool {
        !self.trimmed
    }

    pub fn events(&self) -> Vec<Arc<Event>> {
        self.events.iter().map(|(e, _)| e.clone()).collect()
    }
}
