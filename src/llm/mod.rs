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

use std::time::Duration;

use serde::Serialize;

use crate::error::AppError;

/// One message of a chat completion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// What to ask a model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
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
