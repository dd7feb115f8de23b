//! The frames of `graphql-transport-ws` and of the legacy `graphql-ws` as this server writes
//! them, and the operations one connection runs.
//!
//! An answer arrives serialized (`Answer::payload`, shared by every subscriber that asked
//! the same way, see `graphql::shared`); each operation wraps it in its own `next` (or
//! `data`) frame, whose head it wrote once when it started.

use std::sync::Arc;
use std::task::{Context, Poll};

use async_graphql::http::WebSocketProtocols;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// One response of an operation, serialized.
pub struct Answer {
    pub payload: Arc<str>,
    /// The publication time of the live stream event it answers (µs since the epoch), 0
    /// for anything else.
    pub published_at_us: i64,
}

pub const CONNECTION_ACK: &str = r#"{"type":"connection_ack"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

/// `connection_error` (the legacy protocol's refusal of `connection_init`).
pub fn connection_error(message: &str) -> String {
    serde_json::json!({ "type": "connection_error", "payload": { "message": message } }).to_string()
}

/// `complete` for the operation `id`.
pub fn complete(id: &str) -> String {
    format!(
        r#"{{"type":"complete","id":{}}}"#,
        serde_json::Value::from(id)
    )
}

/// What the running operations have to send.
pub enum Outgoing {
    /// A `next` (`data`) frame, and the publication time its answer carries.
    Next { frame: String, published_at_us: i64 },
    /// The operation `id` has no more answers: `complete`.
    Completed(String),
}

struct Running {
    id: String,
    /// `{"type":"next","id":"<id>","payload":`: the frame before the payload.
    head: Box<str>,
    answers: BoxStream<'static, Answer>,
}

/// The operations of one connection, by id.
pub struct Operations {
    protocol: WebSocketProtocols,
    running: Vec<Running>,
    /// Where the next poll starts, so that a busy operation cannot starve the others.
    start: usize,
}

impl Operations {
    pub fn new(protocol: WebSocketProtocols) -> Operations {
        Operations {
            protocol,
            running: Vec::new(),
            start: 0,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.running.iter().any(|r| r.id == id)
    }

    /// Runs `answers` as the operation `id` (replacing one of the same id).
    pub fn start(&mut self, id: String, answers: BoxStream<'static, Answer>) {
        self.stop(&id);
        let kind = match self.protocol {
            WebSocketProtocols::GraphQLWS => "next",
            WebSocketProtocols::SubscriptionsTransportWS => "data",
        };
        let head = format!(
            r#"{{"type":"{kind}","id":{},"payload":"#,
            serde_json::Value::from(id.as_str())
        );
        self.running.push(Running {
            id,
            head: head.into(),
            answers,
        });
    }

    /// Ends the operation `id`; whether it was running.
    pub fn stop(&mut self, id: &str) -> bool {
        match self.running.iter().position(|r| r.id == id) {
            Some(i) => {
                self.running.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The next frame to send; pending while no operation has one.
    pub async fn next(&mut self) -> Outgoing {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Outgoing> {
        let count = self.running.len();
        for n in 0..count {
            let i = (self.start + n) % count;
            let running = &mut self.running[i];
            match running.answers.poll_next_unpin(cx) {
                Poll::Ready(Some(answer)) => {
                    self.start = i + 1;
                    let mut frame =
                        String::with_capacity(running.head.len() + answer.payload.len() + 1);
                    frame.push_str(&running.head);
                    frame.push_str(&answer.payload);
                    frame.push('}');
                    return Poll::Ready(Outgoing::Next {
                        frame,
                        published_at_us: answer.published_at_us,
                    });
                }
                Poll::Ready(None) => {
                    let done = self.running.swap_remove(i);
                    return Poll::Ready(Outgoing::Completed(done.id));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(payloads: &[&str]) -> BoxStream<'static, Answer> {
        let answers: Vec<Answer> = payloads
            .iter()
            .map(|p| Answer {
                payload: Arc::from(*p),
                published_at_us: 7,
            })
            .collect();
        futures_util::stream::iter(answers).boxed()
    }

    #[tokio::test]
    async fn each_answer_is_framed_with_its_operation_then_completed() {
        let mut operations = Operations::new(WebSocketProtocols::GraphQLWS);
        operations.start("a\"1".into(), answers(&[r#"{"data":{"x":1}}"#]));
        assert!(operations.contains("a\"1"));
        let Outgoing::Next {
            frame,
            published_at_us,
        } = operations.next().await
        else {
            panic!("a frame")
        };
        assert_eq!(
            frame,
            r#"{"type":"next","id":"a\"1","payload":{"data":{"x":1}}}"#
        );
        assert_eq!(published_at_us, 7);
        let parsed: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
        assert_eq!(parsed["payload"]["data"]["x"], 1);
        assert!(matches!(operations.next().await, Outgoing::Completed(id) if id == "a\"1"));
        assert!(!operations.contains("a\"1"));

        let mut legacy = Operations::new(WebSocketProtocols::SubscriptionsTransportWS);
        legacy.start("1".into(), answers(&["{}"]));
        assert!(
            matches!(legacy.next().await, Outgoing::Next { frame, .. } if frame == r#"{"type":"data","id":"1","payload":{}}"#)
        );
        assert!(legacy.stop("1"));
        assert!(!legacy.stop("1"));
        assert_eq!(complete("1"), r#"{"type":"complete","id":"1"}"#);
    }

    #[tokio::test]
    async fn a_busy_operation_does_not_starve_the_others() {
        let mut operations = Operations::new(WebSocketProtocols::GraphQLWS);
        operations.start("busy".into(), answers(&["1"; 10]));
        operations.start("other".into(), answers(&["2"]));
        let mut seen = Vec::new();
        for _ in 0..2 {
            if let Outgoing::Next { frame, .. } = operations.next().await {
                seen.push(frame);
            }
        }
        assert!(seen.iter().any(|f| f.contains("\"other\"")), "{seen:?}");
    }
}
