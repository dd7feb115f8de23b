//! `ToolCall`: one function call an agent made for a reply, as `Message.toolCalls` and the
//! TOOL_CALL / TOOL_RESULT events of `messageStream` show it.

use async_graphql::{Json, Object};
use serde_json::Value;

use crate::db::models::ToolCall;

pub struct ToolCallObject(pub ToolCall);

impl ToolCallObject {
    /// The calls stored with a message (`messages.tool_calls`); an entry that does not
    /// read as a call is left out.
    pub fn all_of(stored: &Value) -> Vec<ToolCallObject> {
        stored
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| serde_json::from_value(c.clone()).ok())
            .map(ToolCallObject)
            .collect()
    }
}

#[Object(name = "ToolCall")]
impl ToolCallObject {
    /// The call's id as the model gave it; TOOL_RESULT repeats it.
    async fn id(&self) -> &str {
        &self.0.id
    }
    /// The tool's name as the model was offered it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The arguments (a string when the model wrote something that is not JSON).
    async fn arguments(&self) -> Json<Value> {
        Json(self.0.arguments.clone())
    }
    /// What the tool gave (TOOL_RESULT, stored calls); null before it answered or when it
    /// failed.
    async fn result(&self) -> Option<Json<Value>> {
        self.0.result.clone().map(Json)
    }
    /// Why the call failed (the tool's message, a stop).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}
