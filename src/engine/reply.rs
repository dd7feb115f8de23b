//! The reply of a chat run as it streams into `messageStream`: LLM tokens as DELTA events,
//! in order, from one task per message (tokens queued meanwhile go out as one delta), and
//! the ANSWER nodes' final text — the rest of it as a DELTA when it continues what was
//! streamed, a REPLACE when it does not. A stream that cannot be appended to (Redis away)
//! loses nothing: the publisher tries again, and an append that was kept though its answer
//! was lost is not kept twice. A stream that lost its data (Redis back without it) is put
//! back as it was numbered and goes on.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use std::collections::VecDeque;

use crate::db::models::ToolCall;
use crate::realtime::Realtime;
use crate::realtime::events::{MessageEvent, MessageEventKind};
use crate::realtime::history::History;
use crate::realtime::streams::{AppendAs, Appended, Reseed, StreamKey};

enum Op {
    Delta(String),
    /// The whole reply as it now stands.
    Answer(String),
    /// A function call made (no result), or its result.
    Tool(MessageEventKind, ToolCall),
}

/// The publisher of one message's reply.
pub struct Reply {
    tx: mpsc::UnboundedSender<Op>,
    task: JoinHandle<Streamed>,
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

    /// An agent calls a function (TOOL_CALL).
    pub fn tool_call(&self, call: ToolCall) {
        let _ = self.tx.send(Op::Tool(MessageEventKind::ToolCall, call));
    }

    /// A function answered (TOOL_RESULT, the call's id with its result or error).
    pub fn tool_result(&self, call: ToolCall) {
        let _ = self.tx.send(Op::Tool(MessageEventKind::ToolResult, call));
    }

    /// Waits until everything given is published (or its stream stopped answering for
    /// `Realtime::publish_patience`; its END, with the stored message, says the rest);
    /// returns the whole reply.
    pub async fn finish(self) -> Streamed {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

/// What a reply's publisher leaves: the whole reply, the function calls it carried (with
/// their results when they came), and the last `seq` its stream gave out (0: none), after
/// which the END goes.
#[derive(Debug, Default)]
pub struct Streamed {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub seq: i64,
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
    /// What the stream holds may not be `sent` (a stream put back only in part, or not at
    /// all): the next event restates the whole reply (a REPLACE).
    uncertain: bool,
    /// Given after a function call not yet published: the call first, then what follows it
    /// in order (text waits here until the calls before it are out).
    waiting: VecDeque<Op>,
    /// The calls published, with their results.
    calls: Vec<ToolCall>,
}

/// An event being published: tried again as it is, under the same name, until kept.
struct InFlight {
    event: MessageEvent,
    /// The reply once it is kept.
    text: String,
    attempt: Uuid,
}

impl Published {
    fn apply(&mut self, op: Op) {
        if !self.waiting.is_empty() || matches!(op, Op::Tool(..)) {
            self.waiting.push_back(op);
            return;
        }
        match op {
            Op::Delta(text) => self.target.push_str(&text),
            Op::Answer(full) => self.target = full,
            Op::Tool(..) => {}
        }
    }

    fn streamed(mut self) -> Streamed {
        // What never made it out (the stream did not answer) still belongs to the reply.
        while let Some(op) = self.waiting.pop_front() {
            match op {
                Op::Delta(text) => self.target.push_str(&text),
                Op::Answer(full) => self.target = full,
                Op::Tool(kind, call) => self.record(kind, call),
            }
        }
        Streamed {
            text: self.target,
            tool_calls: self.calls,
            seq: self.known,
        }
    }

    /// Whether something given is not published yet.
    fn behind(&self) -> bool {
        self.uncertain || self.target != self.sent || !self.waiting.is_empty()
    }

    /// The next event and the reply once it is kept: the text added since the last one
    /// kept (the whole reply when it does not continue what was sent, or that is
    /// uncertain), else the next function call, the text after it then taken up.
    fn next_event(&mut self) -> (MessageEvent, String) {
        if self.uncertain || self.target != self.sent {
            let event = match self.target.strip_prefix(self.sent.as_str()) {
                Some(rest) if !self.uncertain => MessageEvent::delta(self.message_id, rest),
                _ => MessageEvent::replace(self.message_id, self.target.clone()),
            };
            return (event, self.target.clone());
        }
        let event = match self.waiting.pop_front() {
            Some(Op::Tool(MessageEventKind::ToolCall, call)) => {
                MessageEvent::tool_call(self.message_id, call)
            }
            Some(Op::Tool(_, call)) => MessageEvent::tool_result(self.message_id, call),
            // Text never waits first: it is taken up after the call before it.
            _ => MessageEvent::delta(self.message_id, ""),
        };
        while self
            .waiting
            .front()
            .is_some_and(|op| !matches!(op, Op::Tool(..)))
        {
            match self.waiting.pop_front() {
                Some(Op::Delta(text)) => self.target.push_str(&text),
                Some(Op::Answer(full)) => self.target = full,
                _ => {}
            }
        }
        (event, self.sent.clone())
    }

    /// Keeps a published call, or the result of one, for the stored message.
    fn record(&mut self, kind: MessageEventKind, call: ToolCall) {
        match self.calls.iter_mut().find(|c| c.id == call.id) {
            Some(known) if kind == MessageEventKind::ToolResult => *known = call,
            Some(_) => {}
            None => self.calls.push(call),
        }
    }

    fn kept(&mut self, event: &MessageEvent) {
        if let Some(call) = &event.tool_call {
            self.record(event.kind, (**call).clone());
        }
    }
}

/// Publishes the reply's events in order. Nothing is dropped and nothing is kept twice: an
/// append that fails is tried again as it was, under the same name, until the stream takes
/// it (what arrived meanwhile goes in the next event); a stream that lost its data
/// (`Appended::Vanished`) is put back from what was published, or, failing that, re-seeded
/// by the whole reply as one REPLACE. Returns the whole reply.
async fn publish(
    realtime: Realtime,
    message_id: Uuid,
    mut rx: mpsc::UnboundedReceiver<Op>,
) -> Streamed {
    let mut reply = Published {
        message_id,
        target: String::new(),
        sent: String::new(),
        known: 0,
        uncertain: false,
        waiting: VecDeque::new(),
        calls: Vec::new(),
    };
    let mut history = History::default();
    let mut in_flight: Option<InFlight> = None;
    // When the run gave its last piece (the channel closed).
    let mut closed_at: Option<Instant> = None;
    let mut pause = Duration::from_millis(50);
    loop {
        let open = closed_at.is_none();
        if open && in_flight.is_none() && !reply.behind() {
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
        if in_flight.is_none() && !reply.behind() {
            if closed_at.is_none() {
                continue;
            }
            return reply.streamed();
        }
        let InFlight {
            event,
            text,
            attempt,
        } = in_flight.take().unwrap_or_else(|| {
            let (event, text) = reply.next_event();
            InFlight {
                event,
                text,
                attempt: Uuid::new_v4(),
            }
        });
        // With the whole of what was published at hand, a stream Redis lost is put back
        // rather than re-seeded by a REPLACE.
        let reseed = if history.whole() && !history.is_empty() {
            Reseed::Never
        } else {
            Reseed::Whole
        };
        let how = AppendAs {
            known: Some(reply.known),
            reseed,
            attempt: Some(attempt),
        };
        match realtime.publish_reply_event(event.clone(), how).await {
            Ok((Appended::Seq(seq), kept)) => {
                reply.kept(&event);
                reply.sent = text;
                reply.known = seq;
                reply.uncertain = false;
                history.push(kept);
                pause = Duration::from_millis(50);
            }
            Ok((Appended::Vanished, _)) => {
                tracing::warn!(%message_id, "a reply's stream lost its data; putting it back");
                let key = StreamKey::Message(message_id);
                match realtime.restore_stream(key, &history).await {
                    // As it was: the same event goes next.
                    Ok(()) => {
                        in_flight = Some(InFlight {
                            event,
                            text,
                            attempt,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(%message_id, error = ?e, "cannot put a reply's stream back; sending it whole");
                        reply.uncertain = true;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%message_id, error = ?e, "cannot publish a piece of a reply; trying again");
                // Whether it was kept or not, trying it again under its name keeps it once.
                in_flight = Some(InFlight {
                    event,
                    text,
                    attempt,
                });
                if closed_at.is_some_and(|at| at.elapsed() >= realtime.publish_patience) {
                    tracing::error!(%message_id, "the reply's stream did not answer; its END says the rest");
                    return reply.streamed();
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
