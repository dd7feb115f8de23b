//! The reply of a chat run as it streams into `messageStream`: LLM tokens as DELTA events,
//! in order, from one task per message (tokens queued meanwhile go out as one delta), and
//! the ANSWER nodes' final text — the rest of it as a DELTA when it continues what was
//! streamed, a REPLACE when it does not.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::realtime::Realtime;
use crate::realtime::events::MessageEvent;

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

    /// Waits until everything given is published; returns the text the client was sent.
    pub async fn finish(self) -> String {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

async fn publish(
    realtime: Realtime,
    message_id: Uuid,
    mut rx: mpsc::UnboundedReceiver<Op>,
) -> String {
    let mut streamed = String::new();
    let mut pending: Option<Op> = None;
    loop {
        let op = match pending.take() {
            Some(op) => op,
            None => match rx.recv().await {
                Some(op) => op,
                None => return streamed,
            },
        };
        let event = match op {
            Op::Delta(mut text) => {
                // Tokens that arrived while the last one was being published go together.
                while let Ok(next) = rx.try_recv() {
                    match next {
                        Op::Delta(more) => text.push_str(&more),
                        other => {
                            pending = Some(other);
                            break;
                        }
                    }
                }
                streamed.push_str(&text);
                MessageEvent::delta(message_id, text)
            }
            Op::Answer(full) => {
                if full == streamed {
                    continue;
                }
                let event = match full.strip_prefix(streamed.as_str()) {
                    Some(rest) => MessageEvent::delta(message_id, rest),
                    None => MessageEvent::replace(message_id, full.clone()),
                };
                streamed = full;
                event
            }
        };
        if let Err(e) = realtime.publish_message_event(event).await {
            tracing::warn!(%message_id, error = ?e, "cannot publish a piece of a reply");
        }
    }
}
