//! Enums stored as their GraphQL names in CHECK-constrained varchar columns.

use async_graphql::Enum;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

/// Reads a stored enum value; a value the code does not know is an internal error.
pub fn parse<T: DeserializeOwned>(text: &str) -> AppResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| AppError::internal(format!("unexpected stored value {text:?}")))
}

macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }
    };
}

stored_enum!(/// How a document is cut into segments: GENERAL (segments searched and given as
    /// they are), PARENT_CHILD (small child segments searched, their parent section given),
    /// QA (rows of question and answer: the question searched, the pair given).
    ChunkMode { General, ParentChild, Qa });
stored_enum!(/// What an application is for.
    ApplicationMode { Chat, Workflow });
stored_enum!(/// Whether end users can reach an application.
    ApplicationStatus { Draft, Published });
stored_enum!(/// Whether a conversation is still going.
    ConversationStatus { Active, Archived });
stored_enum!(/// Who wrote a message.
    MessageRole { User, Assistant, System });
stored_enum!(/// Where a message is in its life.
    MessageStatus { Pending, Streaming, Completed, Stopped, Failed });
stored_enum!(/// Where a workflow run (or one of its nodes) is in its life. SKIPPED is a node's only:
    /// it stood on a CONDITION branch that was not taken.
    ExecutionStatus { Queued, Running, Succeeded, Failed, Stopped, Skipped });
stored_enum!(/// An end user's verdict on a reply.
    FeedbackRating { Like, Dislike });
stored_enum!(/// What a builder's annotation does.
    AnnotationType { Correction, Improvement, Note });
stored_enum!(/// What a plugin adds.
    PluginType { Tool, Model, Extension });

impl ApplicationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationMode::Chat => "CHAT",
            ApplicationMode::Workflow => "WORKFLOW",
        }
    }
}

impl FeedbackRating {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackRating::Like => "LIKE",
            FeedbackRating::Dislike => "DISLIKE",
        }
    }
}

impl AnnotationType {
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationType::Correction => "CORRECTION",
            AnnotationType::Improvement => "IMPROVEMENT",
            AnnotationType::Note => "NOTE",
        }
    }
}

impl PluginType {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Tool => "TOOL",
            PluginType::Model => "MODEL",
            PluginType::Extension => "EXTENSION",
        }
    }
}
