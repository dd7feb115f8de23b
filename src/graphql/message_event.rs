//! `MessageEvent`: one step of an assistant message's reply as `messageStream` delivers it.

use std::sync::Arc;

use async_graphql::{Object, Result};

use super::conversation::MessageObject;
use super::tool_call::ToolCallObject;
use crate::realtime::events::{Event, MessageEvent, MessageEventKind};

/// Shares the event every subscriber of this process got.
pub struct MessageEventObject(pub Arc<Event>);

impl MessageEventObject {
    fn event(&self) -> Result<&MessageEvent> {
        match &*self.0 {
            Event::Message(e) => Ok(e),
            _ => Err("not a message event".into()),
        }
    }
}

#[Object(name = "MessageEvent")]
impl MessageEventObject {
    /// 1, 2, 3, ... per message, gapless.
    async fn seq(&self) -> Result<i32> {
        Ok(i32::try_from(self.event()?.seq).unwrap_or(i32::MAX))
    }
    async fn kind(&self) -> Result<MessageEventKind> {
        Ok(self.event()?.kind)
    }
    /// DELTA: the new text only, never the text so far.
    async fn delta(&self) -> Result<Option<&str>> {
        Ok(self.event()?.delta.as_deref())
    }
    /// REPLACE: the whole reply replacing what came before.
    async fn text(&self) -> Result<Option<&str>> {
        Ok(self.event()?.text.as_deref())
    }
    /// END: the finished message (content, usage, latency, status).
    async fn message(&self) -> Result<Option<MessageObject>> {
        Ok(self
            .event()?
            .message
            .as_ref()
            .map(|m| MessageObject::of((**m).clone())))
    }
    /// ERROR: what went wrong.
    async fn error(&self) -> Result<Option<&str>> {
        Ok(self.event()?.error.as_deref())
    }
    /// TOOL_CALL: the call (id, name, arguments); TOOL_RESULT: the same id with its result
    /// or error.
    async fn tool_call(&self) -> Result<Option<ToolCallObject>> {
        Ok(self
            .event()?
            .tool_call
            .as_ref()
            .map(|c| ToolCallObject((**c).clone())))
    }
}
