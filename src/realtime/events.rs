//! What travels on the bus: the events of a message's or an execution's stream (numbered by
//! `seq`), and the snapshots the workspace, conversation and document feeds carry.
//!
//! Events are JSON on the wire (`{"seq":N,"t":"message",...}`); the bus parses each once per
//! process and hands every subscriber the same `Arc`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::db::models::{Document, ExecutionRecord, Message, ToolCall};
use crate::workflow::graph::NodeType;

/// One event of any stream or feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
pub enum Event {
    /// A step of an assistant message's reply (`messageStream`).
    Message(MessageEvent),
    /// A step of a workflow run (`executionEvents`).
    Execution(ExecutionEvent),
    /// An execution changed status (`workspaceExecutions`).
    ExecutionChanged { execution: Box<ExecutionRecord> },
    /// A message of a conversation was created or finished (`conversationEvents`).
    MessageChanged { message: Box<Message> },
    /// A document's indexing advanced (`documentIndexing`).
    DocumentChanged { document: Box<Document> },
    /// Between instances: stop this run wherever it runs.
    StopRun { execution_id: Uuid },
    /// Between instances: a run was enqueued; idle workers claim it.
    RunQueued,
    /// Between instances: an API key was revoked (or, with no key, every key of a deleted
    /// application): connections opened with it or with its end-user tokens close.
    AccessRevoked {
        application_id: Uuid,
        api_key_id: Option<Uuid>,
    },
    /// Between instances: a user's session ended (logout, a reused refresh token), or with
    /// no session every session of the user (password reset): sockets opened with its
    /// access tokens close.
    SessionsEnded {
        user_id: Uuid,
        session_id: Option<Uuid>,
    },
    /// Between instances: a user's membership of a team changed (removed, left, new role):
    /// that user's live subscriptions check again that they may still see what they follow.
    MembershipChanged { team_id: Uuid, user_id: Uuid },
}

impl Event {
    /// The position in its stream; 0 for feed events, which have none.
    pub fn seq(&self) -> i64 {
        match self {
            Event::Message(e) => e.seq,
            Event::Execution(e) => e.seq,
            _ => 0,
        }
    }

    /// Whether this event states everything its stream said before it (a REPLACE, an END
    /// with its message, a run's final state), so that missing what came before loses
    /// nothing of the result.
    pub fn states_everything(&self) -> bool {
        match self {
            Event::Message(e) => matches!(
                e.kind,
                MessageEventKind::Replace | MessageEventKind::End | MessageEventKind::Error
            ),
            Event::Execution(e) => e.kind == ExecutionEventKind::ExecutionFinished,
            _ => false,
        }
    }

    /// When a stream event was published (µs since the epoch); 0 for feed events and
    /// events not published yet.
    pub fn published_at_us(&self) -> i64 {
        match self {
            Event::Message(e) => e.published_at_us,
            Event::Execution(e) => e.published_at_us,
            _ => 0,
        }
    }

    /// Stamps a stream event with the time of its publication, now.
    pub fn stamp_publication(&mut self) {
        let now = now_us();
        match self {
            Event::Message(e) => e.published_at_us = now,
            Event::Execution(e) => e.published_at_us = now,
            _ => {}
        }
    }

    /// What subscribers of this process made of a stream event; `None` for feed events.
    pub fn renderings(&self) -> Option<&Renderings> {
        match self {
            Event::Message(e) => Some(&e.renderings),
            Event::Execution(e) => Some(&e.renderings),
            _ => None,
        }
    }

    /// Whether nothing follows this event in its stream.
    pub fn is_terminal(&self) -> bool {
        match self {
            Event::Message(e) => matches!(e.kind, MessageEventKind::End | MessageEventKind::Error),
            Event::Execution(e) => e.kind == ExecutionEventKind::ExecutionFinished,
            _ => false,
        }
    }
}

/// The answers subscribers of this process gave for one stream event, each under the key of
/// how it was asked (`graphql::shared`): kept with the event, so that every subscriber that
/// asked the same way sends the first one's answer instead of making its own. Never on the
/// wire; a copy of the event starts with none.
#[derive(Default)]
pub struct Renderings(Mutex<Vec<(Arc<str>, Arc<str>)>>);

/// Ways of asking kept per event, at most: subscribers asking otherwise answer for
/// themselves (a scan of this list is each subscriber's cost).
const MAX_RENDERINGS: usize = 8;

impl Renderings {
    /// The answer kept under `key`.
    pub fn get(&self, key: &Arc<str>) -> Option<Arc<str>> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .find(|(k, _)| Arc::ptr_eq(k, key) || **k == **key)
            .map(|(_, answer)| answer.clone())
    }

    /// Keeps `answer` under `key`, unless one is kept already or the list is full.
    pub fn put(&self, key: Arc<str>, answer: Arc<str>) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < MAX_RENDERINGS && !kept.iter().any(|(k, _)| **k == *key) {
            kept.push((key, answer));
        }
    }
}

impl Clone for Renderings {
    /// A copy of an event is another event: what was made of this one does not follow it.
    fn clone(&self) -> Renderings {
        Renderings::default()
    }
}

impl std::fmt::Debug for Renderings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.lock().map_or(0, |kept| kept.len());
        write!(f, "Renderings({kept})")
    }
}

fn is_zero(seq: &i64) -> bool {
    *seq == 0
}

/// Now, in µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// What a message event says.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageEventKind {
    /// New text: `delta` holds only what was added.
    Delta,
    /// `text` replaces everything streamed before.
    Replace,
    /// The reply is finished (or stopped); `message` holds it.
    End,
    /// The reply failed; `error` says why.
    Error,
    /// An agent calls a function: `toolCall` holds its id, name and arguments.
    ToolCall,
    /// The function answered: `toolCall` holds the same id with its result or error.
    ToolResult,
}

/// An event of `messageStream`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEvent {
    /// Assigned when the event is published; 0 before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: i64,
    pub message_id: Uuid,
    pub kind: MessageEventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<Message>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<Box<ToolCall>>,
    /// When it was published (µs since the epoch); 0 before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub published_at_us: i64,
    #[serde(skip)]
    pub renderings: Renderings,
}

impl MessageEvent {
    /// TOOL_CALL: the call made (no result yet).
    pub fn tool_call(message_id: Uuid, call: ToolCall) -> MessageEvent {
        MessageEvent {
            tool_call: Some(Box::new(call)),
            ..MessageEvent::new(message_id, MessageEventKind::ToolCall)
        }
    }

    /// TOOL_RESULT: the call with its result or error.
    pub fn tool_result(message_id: Uuid, call: ToolCall) -> MessageEvent {
        MessageEvent {
            tool_call: Some(Box::new(call)),
            ..MessageEvent::new(message_id, MessageEventKind::ToolResult)
        }
    }

    pub fn delta(message_id: Uuid, delta: impl Into<String>) -> MessageEvent {
        MessageEvent {
            delta: Some(delta.into()),
            ..MessageEvent::new(message_id, MessageEventKind::Delta)
        }
    }

    pub fn replace(message_id: Uuid, text: impl Into<String>) -> MessageEvent {
        MessageEvent {
            text: Some(text.into()),
            ..MessageEvent::new(message_id, MessageEventKind::Replace)
        }
    }

    /// The end of the stream, carrying the stored message.
    pub fn end(message: Message) -> MessageEvent {
        MessageEvent {
            message_id: message.id,
            message: Some(Box::new(message)),
            ..MessageEvent::new(Uuid::nil(), MessageEventKind::End)
        }
    }

    pub fn error(message_id: Uuid, error: impl Into<String>) -> MessageEvent {
        MessageEvent {
            error: Some(error.into()),
            ..MessageEvent::new(message_id, MessageEventKind::Error)
        }
    }

    fn new(message_id: Uuid, kind: MessageEventKind) -> MessageEvent {
        MessageEvent {
            seq: 0,
            message_id,
            kind,
            delta: None,
            text: None,
            message: None,
            error: None,
            tool_call: None,
            published_at_us: 0,
            renderings: Renderings::default(),
        }
    }
}

/// What an execution event says.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionEventKind {
    ExecutionStarted,
    NodeStarted,
    /// A running node's step (an agent's iteration): `outputs` says what it did.
    NodeProgress,
    NodeFinished,
    ExecutionFinished,
}

/// An event of `executionEvents`: the run as it stands, and the node concerned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEvent {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: i64,
    pub kind: ExecutionEventKind,
    pub execution: Box<ExecutionRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<NodeType>,
    /// The node's status for node events, the run's otherwise (stored spelling).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<i32>,
    pub at: DateTime<Utc>,
    /// When it was published (µs since the epoch); 0 before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub published_at_us: i64,
    #[serde(skip)]
    pub renderings: Renderings,
}

/// The largest JSON value (serialized) an execution event carries as it is; a larger one
/// travels as `trimmed` and is read in full from the run's record (`nodeResults`, `outputs`).
pub const MAX_EVENT_VALUE_BYTES: usize = 64 << 10;

/// `value`, or a note saying how large it was when it is over `MAX_EVENT_VALUE_BYTES`.
fn trimmed(value: &mut Option<Value>) {
    let size = match value.as_ref().map(serde_json::to_vec) {
        Some(Ok(bytes)) => bytes.len(),
        _ => return,
    };
    if size > MAX_EVENT_VALUE_BYTES {
        *value = Some(serde_json::json!({
            "trimmed": true,
            "bytes": size,
            "note": "too large for a live event; the run's record holds the whole value",
        }));
    }
}

impl ExecutionRecord {
    /// The record as feeds and events carry it: inputs and outputs over
    /// `MAX_EVENT_VALUE_BYTES` trimmed (PostgreSQL keeps them whole).
    pub fn for_events(mut self) -> ExecutionRecord {
        let mut inputs = Some(std::mem::take(&mut self.inputs));
        trimmed(&mut inputs);
        self.inputs = inputs.unwrap_or_default();
        trimmed(&mut self.outputs);
        self
    }
}

impl ExecutionEvent {
    /// The event with every value over `MAX_EVENT_VALUE_BYTES` trimmed: what is published
    /// (and retained in Redis) for live views.
    pub fn trimmed(mut self) -> ExecutionEvent {
        trimmed(&mut self.inputs);
        trimmed(&mut self.outputs);
        self.execution = Box::new((*self.execution).for_events());
        self
    }

    /// Whether the run's workspace feed (`workspaceExecutions`) hears of it too: the run's
    /// start and end, and each node that starts or ends (its steps and current node
    /// change); a skipped node changes neither.
    pub fn announced(&self) -> bool {
        match self.kind {
            ExecutionEventKind::ExecutionStarted | ExecutionEventKind::ExecutionFinished => true,
            ExecutionEventKind::NodeStarted => true,
            ExecutionEventKind::NodeProgress => false,
            ExecutionEventKind::NodeFinished => self.status != "SKIPPED",
        }
    }

    /// An event about the run itself (started, finished), with its current status.
    pub fn of_run(kind: ExecutionEventKind, execution: ExecutionRecord) -> ExecutionEvent {
        ExecutionEvent {
            seq: 0,
            kind,
            status: execution.status.clone(),
            error: execution.error.clone(),
            elapsed_ms: execution.elapsed_ms,
            total_tokens: Some(execution.total_tokens),
            outputs: execution.outputs.clone(),
            inputs: None,
            node_key: None,
            node_type: None,
            execution: Box::new(execution),
            at: Utc::now(),
            published_at_us: 0,
            renderings: Renderings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnumbered_event_takes_the_seq_spliced_in_front() {
        let event = Event::Message(MessageEvent::delta(Uuid::nil(), "Hel\"lo"));
        let json = serde_json::to_string(&event).expect("serializes");
        assert!(json.starts_with("{\"t\":\"message\""), "{json}");
        // What the producer's script does: `{"seq":N,` + the rest.
        let numbered = format!("{{\"seq\":7,{}", &json[1..]);
        let parsed: Event = serde_json::from_str(&numbered).expect("parses");
        assert_eq!(parsed.seq(), 7);
        let Event::Message(m) = parsed else {
            panic!("a message event")
        };
        assert_eq!(m.delta.as_deref(), Some("Hel\"lo"));
        assert!(!Event::Message(m).is_terminal());
    }
}
