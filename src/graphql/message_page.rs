//! A page of a conversation's messages, read with what its selection shows.
//!
//! The page's statement reads each message's feedback when the page shows `feedbacks` (a
//! JSON subquery on the messages that have any, of the six columns a feedback does not share
//! with its message), and only the columns a chat history shows
//! (`brief_columns!`) when every field the page asks of its messages is answered
//! from them ([`BRIEF_FIELDS`]). Each of the four ways is its own row type, so its own loader
//! cache: a brief message never answers a field it did not read.

use async_graphql::{Context, Lookahead, Result};
use chrono::{DateTime, Utc};
use diesel::deserialize::{self, QueryableByName};
use diesel::pg::Pg;
use diesel::row::NamedRow;
use diesel::sql_types::{Nullable, Text};
use uuid::Uuid;

use super::lists::{ListFilter, ListName};
use super::loaders::ListRow;
use super::pages::{child_rows, page_asks_only};
use super::pagination::{Cursor, Page};
use crate::db::models::{Message, MessageFeedback};
use crate::error::{AppError, AppResult};

/// The fields of `Message` answered from the brief columns (relations need only the
/// ids; `feedbacks` is read in the page's statement or by its loader).
pub const BRIEF_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "sequenceNumber",
    "role",
    "content",
    "status",
    "createdAt",
    "updatedAt",
    "executionId",
    "execution",
    "conversation",
    "feedbacks",
    "retrieverResources",
    "annotations",
];

/// The columns of a message that a chat history shows: its identity, place, role, text,
/// status and times. Not read: the run's query and answer, inputs, outputs, model, tokens,
/// latency, error, metadata, tool calls and the stream's last seq (the message takes the
/// values of one without them: `db::models::message_row`).
macro_rules! brief_columns {
    () => {
        "t.id, t.workspace_id, t.conversation_id, t.application_id, t.execution_id,          t.sequence_number, t.role, t.content, t.status, t.created_at, t.updated_at,          t.feedback_count"
    };
}

/// The feedback of each message as a JSON array (null when it has none), in
/// `FeedbacksOfMessage`'s order: the feedback of the message's own workspace, application
/// and conversation, which every viewer who sees the message may see. Only the messages
/// that have feedback look for it (most have none). Each feedback is an array of the
/// columns it does not share with its message ([`JoinedFeedback`]): writing all ten as a
/// JSON object was a fifth of the page's statement on a chat history.
macro_rules! feedback_column {
    () => {
        ", CASE WHEN t.feedback_count > 0 THEN \
         (SELECT json_agg(json_build_array(f.id, f.end_user_id, f.rating, f.content, \
         f.created_at, f.updated_at) ORDER BY f.created_at, f.id)::text \
         FROM message_feedbacks f \
         WHERE f.message_id = t.id AND f.workspace_id = t.workspace_id \
         AND f.application_id = t.application_id AND f.conversation_id = t.conversation_id) \
         END AS feedbacks"
    };
}

/// A feedback as the page's statement reads it: id, end user, rating, content, created and
/// updated (the rest are its message's).
type JoinedFeedback = (
    Uuid,
    Uuid,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// A row of a page of messages: the message (brief when `BRIEF`), and its feedback as JSON
/// text when `FEEDBACK`.
#[derive(Debug, Clone)]
pub struct MessageRow<const FEEDBACK: bool, const BRIEF: bool> {
    message: Message,
    feedbacks: Option<String>,
}

impl<const FEEDBACK: bool, const BRIEF: bool> MessageRow<FEEDBACK, BRIEF> {
    /// The message, and its feedback (oldest first) when the row read it.
    fn into_parts(self) -> AppResult<(Message, Option<Vec<MessageFeedback>>)> {
        if !FEEDBACK {
            return Ok((self.message, None));
        }
        let joined: Vec<JoinedFeedback> = match self.feedbacks {
            Some(rows) => serde_json::from_str(&rows).map_err(|e| {
                AppError::internal(format!("a joined feedback did not read back: {e}"))
            })?,
            None => Vec::new(),
        };
        let message = &self.message;
        let feedbacks = joined
            .into_iter()
            .map(
                |(id, end_user_id, rating, content, created_at, updated_at)| MessageFeedback {
                    id,
                    // The statement joined only the message's own feedback: of its
                    // workspace, application and conversation.
                    workspace_id: message.workspace_id,
                    message_id: message.id,
                    conversation_id: message.conversation_id,
                    application_id: message.application_id,
                    end_user_id,
                    rating,
                    content,
                    created_at,
                    updated_at,
                },
            )
            .collect();
        Ok((self.message, Some(feedbacks)))
    }
}

impl<const FEEDBACK: bool, const BRIEF: bool> QueryableByName<Pg> for MessageRow<FEEDBACK, BRIEF> {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let message = Message::build(row)?;
        let feedbacks = if FEEDBACK {
            NamedRow::get::<Nullable<Text>, Option<String>>(row, "feedbacks")?
        } else {
            None
        };
        Ok(MessageRow { message, feedbacks })
    }
}

impl<const FEEDBACK: bool, const BRIEF: bool> ListRow for MessageRow<FEEDBACK, BRIEF> {
    const COLUMNS: &'static str = match (FEEDBACK, BRIEF) {
        (false, false) => "t.*",
        (true, false) => concat!("t.*", feedback_column!()),
        (false, true) => brief_columns!(),
        (true, true) => concat!(brief_columns!(), feedback_column!()),
    };
    fn parent(&self, _: ListName) -> Uuid {
        self.message.conversation_id
    }
    fn cursor(&self) -> Cursor {
        message_cursor(&self.message)
    }
}

/// A message's place in its conversation's list.
pub fn message_cursor(message: &Message) -> Cursor {
    Cursor {
        key: i64::from(message.sequence_number),
        id: message.id,
    }
}

/// Whether every field a page (`look`) asks of its messages is answered by a brief read.
fn brief_enough(look: &Lookahead<'_>) -> bool {
    page_asks_only(look, |field| BRIEF_FIELDS.contains(&field.name()))
}

/// The messages of one page of `conversation`, each with its feedback when the page shows
/// `feedbacks` (`None` otherwise: the message's own loader answers it).
pub async fn messages_of_page(
    ctx: &Context<'_>,
    conversation: Uuid,
    page: Page,
) -> Result<Vec<(Message, Option<Vec<MessageFeedback>>)>> {
    let look = ctx.look_ahead();
    let feedback = super::conversation::selection_shows(&look, "feedbacks");
    match (feedback, brief_enough(&look)) {
        (false, false) => rows::<false, false>(ctx, conversation, page).await,
        (true, false) => rows::<true, false>(ctx, conversation, page).await,
        (false, true) => rows::<false, true>(ctx, conversation, page).await,
        (true, true) => rows::<true, true>(ctx, conversation, page).await,
    }
}

async fn rows<const FEEDBACK: bool, const BRIEF: bool>(
    ctx: &Context<'_>,
    conversation: Uuid,
    page: Page,
) -> Result<Vec<(Message, Option<Vec<MessageFeedback>>)>> {
    let list = ListName::ConversationMessages;
    let rows: Vec<MessageRow<FEEDBACK, BRIEF>> =
        child_rows(ctx, list, conversation, page, ListFilter::default()).await?;
    Ok(rows
        .into_iter()
        .map(MessageRow::into_parts)
        .collect::<AppResult<Vec<_>>>()?)
}
