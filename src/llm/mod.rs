//! Clients of model providers: OpenAI-compatible endpoints (OpenAI, vLLM, Ollama,
//! llama.cpp's server...) streaming chat completions and computing embeddings, and the
//! built-in ECHO provider for development and demos.
//!
//! A reply arrives as `Chunk`s through a callback; dropping the future cancels the request
//! (the HTTP connection to the provider is closed), which is how a stop reaches it.

pub mod echo;
pub mod openai;
pub mod provider;
pub mod sse;
pub mod usage;

use std::time::Duration;

use serde::Serialize;

use crate::error::AppError;

/// One message of a chat completion request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// The functions an assistant turn called (OpenAI function calling).
    pub tool_calls: Vec<ToolCallRequest>,
    /// A `tool` message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
            ..ChatMessage::default()
        }
    }

    /// An assistant turn that called `calls` (with what it said before them, if anything).
    pub fn calling(content: impl Into<String>, calls: Vec<ToolCallRequest>) -> ChatMessage {
        ChatMessage {
            tool_calls: calls,
            ..ChatMessage::new("assistant", content)
        }
    }

    /// The answer to call `call_id`.
    pub fn tool_answer(call_id: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            tool_call_id: Some(call_id.to_string()),
            ..ChatMessage::new("tool", content)
        }
    }
}

/// The OpenAI shape: `content` is null in an assistant turn that only calls functions.
impl Serialize for ChatMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("role", &self.role)?;
        if self.content.is_empty() && !self.tool_calls.is_empty() {
            map.serialize_entry("content", &serde_json::Value::Null)?;
        } else {
            map.serialize_entry("content", &self.content)?;
        }
        if !self.tool_calls.is_empty() {
            let calls: Vec<serde_json::Value> = self
                .tool_calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "type": "function",
                        "function": { "name": c.name, "arguments": c.arguments },
                    })
                })
                .collect();
            map.serialize_entry("tool_calls", &calls)?;
        }
        if let Some(id) = &self.tool_call_id {
            map.serialize_entry("tool_call_id", id)?;
        }
        map.end()
    }
}

/// A function the model asked to call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCallRequest {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it (it may not parse).
    pub arguments: String,
}

/// A function offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// What to ask a model.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Functions the model may call.
    pub tools: Vec<ToolSpec>,
    /// The tools are listed but the model must answer in text (`tool_choice: "none"`).
    pub answer_only: bool,
}

/// One turn of a model: what it cost, and the functions it asked to call (none: it
/// answered).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Turn {
    pub usage: Usage,
    pub tool_calls: Vec<ToolCallRequest>,
}

/// A piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// New text of the reply.
    Delta(String),
    /// What the request cost, as the provider counts it.
    Usage(Usage),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
    }
}

/// Why a provider call failed. The messages never carry the API key.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LlmError {
    #[error("the model provider refused the API key (HTTP {0})")]
    Authentication(u16),
    #[error("the model provider is rate limiting requests (HTTP 429)")]
    RateLimited,
    #[error("the model provider answered HTTP {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("the model provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the model provider: {0}")]
    Transport(String),
    #[error("the model provider sent something unreadable: {0}")]
    Protocol(String),
}

impl LlmError {
    /// Whether trying again (before any token arrived) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited | LlmError::Timeout(_) | LlmError::Transport(_) => true,
            LlmError::Provider { status, .. } => *status >= 500,
            LlmError::Authentication(_) | LlmError::Protocol(_) => false,
        }
    }
}

impl From<LlmError> for AppError {
    fn from(error: LlmError) -> AppError {
        match error {
            LlmError::Authentication(_) => AppError::Forbidden,
            other => AppError::Conflict(other.to_string()),
        }
    }
}
