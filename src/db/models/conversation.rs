//! Diesel models: conversations, messages, annotations and feedback.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::{conversations, message_annotations, message_feedbacks, messages};

/// A row of `conversations`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = conversations, check_for_backend(diesel::pg::Pg))]
pub struct Conversation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub application_id: Uuid,
    pub end_user_id: Option<Uuid>,
    pub title: String,
    pub status: String,
    pub summary: Option<String>,
    pub message_count: i32,
    pub metadata: Value,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `messages` (read by name from a statement's row as `message_row` does).
#[derive(
    Debug, Clone, Queryable, Selectable, Identifiable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub struct Message {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub conversation_id: Uuid,
    pub application_id: Uuid,
    pub execution_id: Option<Uuid>,
    pub sequence_number: i32,
    pub role: String,
    pub content: String,
    pub query: Option<String>,
    pub answer: Option<String>,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub model_provider: Option<String>,
    pub model_name: Option<String>,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    pub latency: Option<f64>,
    pub status: String,
    pub error: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The seq of the event that ended its stream, once it has.
    pub stream_seq: Option<i64>,
    /// The function calls made for the reply (`ToolCall`s), in order.
    #[serde(default = "no_calls")]
    pub tool_calls: Value,
    /// How many feedback rows it has (kept by the database).
    #[serde(default)]
    pub feedback_count: i32,
}

fn no_calls() -> Value {
    Value::Array(Vec::new())
}

/// One function call an agent made for a reply, as `messages.tool_calls` keeps it and
/// `messageStream` carries it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model gave them (a string when they were not JSON).
    pub arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A row of `message_annotations`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = message_annotations, check_for_backend(diesel::pg::Pg))]
pub struct MessageAnnotation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// None when written from a question and answer alone.
    pub message_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub application_id: Uuid,
    pub question: Option<String>,
    pub content: String,
    pub annotation_type: String,
    pub hit_count: i32,
    pub annotated_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `message_feedbacks`.
#[derive(
    Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, serde::Deserialize,
)]
#[diesel(table_name = message_feedbacks, check_for_backend(diesel::pg::Pg))]
pub struct MessageFeedback {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    pub application_id: Uuid,
    pub end_user_id: Uuid,
    pub rating: String,
    pub content: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
