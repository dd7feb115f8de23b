//! The reply of a chat run as it streams into `messageStream`: LLM tokens as DELTA events,
//! in order, from one task per message (tokens queued meanwhile go out as one delta), and
//! the ANSWER nodes' final text — the rest of it as a DELTA when it continues what was
//! streamed, a REPLACE when it does not. A stream that cannot be appended to (Redis away)
//! or lost its data (Redis back without it) loses nothing: the publisher tries again and
//! then sends the whole reply as one REPLACE.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::realtime::Realtime;
use crate::realtime::events::MessageEvent;
use crate::realtime::streams::Appended;

enum Op {
    Delta(String),
    /// The whole reply as it now stands.
    Answer(String),
}

/// The publisher of one message's reply.
pub struct Reply {
    tx: mpsc::UnboundedSender<Op>,
    task: JoinHandle<String>,
}

impl Reply {
    pub fn start(realtime: Realtime, message_id: Uuid) -> Reply {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(publish(realtime, message_id, rx));
        Reply { tx, task }
    }

    /// New text of the reply.
    pub fn delta(&self, text: &str) {
        if !text.is_empty() {
            let _ = self.tx.send(Op::Delta(text.to_string()));
        }
    }

    /// The reply as the ANSWER nodes now give it.
    pub fn answer(&self, full: String) {
        let _ = self.tx.send(Op::Answer(full));
    }

    /// Waits until everything given is published (or its stream stopped answering for
    /// `Realtime::publish_patience`; its END, with the stored message, says the rest);
    /// returns the whole reply.
    pub async fn finish(self) -> String {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

/// The reply as it should stand, and what its stream holds of it.
struct Published {
    message_id: Uuid,
    /// Everything the run has given so far.
    target: String,
    /// What the stream holds, as far as this publisher knows.
    sent: String,
    /// The last `seq` assigned to one of this reply's events.
    known: i64,
    /// An append failed: it may or may not have been kept, so the next event restates the
    /// whole reply (a REPLACE) rather than add to what may already be there.
    uncertain: bool,
}

impl Published {
    fn apply(&mut self, op: Op) {
        match op {
            Op::Delta(text) => self.target.push_str(&text),
            Op::Answer(full) => self.target = full,
        }
    }

    fn behind(&self) -> bool {
        self.uncertain || self.target != self.sent
    }

    /// The next event: what was added since the last one kept, or the whole reply when it
    /// does not continue what was sent (or that is uncertain).
    fn next_event(&self) -> MessageEvent {
        match self.target.strip_prefix(self.sent.as_str()) {
            Some(rest) if !self.uncertain => MessageEvent::delta(self.message_id, rest),
            _ => MessageEvent::replace(self.message_id, self.target.clone()),
        }
    }
}

/// Publishes the reply's events in order. Nothing is dropped: an append that fails is
/// tried again (with what arrived meanwhile joined to it) until the stream takes it, and
/// after a failure or a stream that lost its data (`Appended::Vanished`) the whole reply
/// goes as one REPLACE. Returns the whole reply.
async fn publish(
    realtime: Realtime,
    message_id: Uuid,
    mut rx: mpsc::UnboundedReceiver<Op>,
) -> String {
    let mut reply = Published {
        message_id,
        target: String::new(),
        sent: String::new(),
        known: 0,
        uncertain: false,
    };
    // When the run gave its last piece (the channel closed).
    let mut closed_at: Option<Instant> = None;
    let mut pause = Duration::from_millis(50);
    loop {
        let open = closed_at.is_none();
        if open && !reply.behind() {
            match rx.recv().await {
                Some(op) => reply.apply(op),
                None => closed_at = Some(Instant::now()),
            }
        }
        // What arrived meanwhile goes in the same event.
        while closed_at.is_none() {
            match rx.try_recv() {
                Ok(op) => reply.apply(op),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => closed_at = Some(Instant::now()),
            }
        }
        if !reply.behind() {
            if closed_at.is_none() {
                continue;
            }
            return reply.target;
        }
        let event = reply.next_event();
        let text = reply.target.clone();
        match realtime.publish_reply_event(event, reply.known).await {
            Ok(Appended::Seq(seq)) => {
                reply.sent = text;
                reply.known = seq;
                reply.uncertain = false;
                pause = Duration::from_millis(50);
            }
            Ok(Appended::Vanished) => {
                tracing::warn!(%message_id, "a reply's stream lost its data; sending it whole");
                reply.uncertain = true;
            }
            Err(e) => {
                tracing::warn!(%message_id, error = ?e, "cannot publish a piece of a reply; trying again");
                reply.uncertain = true;
                if closed_at.is_some_and(|at| at.elapsed() >= realtime.publish_patience) {
                    tracing::error!(%message_id, "the reply's stream did not answer; its END says the rest");
                    return reply.target;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
