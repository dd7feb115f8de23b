//! A conversation with its end user, read in the page's statement when the page shows them.
//!
//! The end user is joined to the page (`LEFT JOIN end_users e`) and its columns are read
//! beside the conversation's, each under the prefix `eu_`: in binary, as the conversation's
//! are, where a `row_to_json` of the end user cost the list's statement more than the rest
//! of its page. The end user must be of the conversation's workspace, as every viewer who
//! sees the conversation may see its end user.
//!
//! A page whose selection asks only what a list of conversations shows ([`brief_enough`])
//! reads a brief row (`ConversationWithEndUser<true>`): the conversation without its summary
//! and metadata, the end user's identity, name and avatar only. Each way is its own row
//! type, so its own loader cache: a brief row never answers a field it did not read.

use async_graphql::Lookahead;
use chrono::DateTime;
use diesel::deserialize::{self, QueryableByName};
use diesel::pg::Pg;
use diesel::row::NamedRow;
use diesel::sql_types::{
    Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid, VarChar,
};
use serde_json::Value;
use uuid::Uuid;

use super::lists::ListName;
use super::loaders::ListRow;
use super::pages::page_asks_only;
use super::pagination::Cursor;
use crate::db::models::{Conversation, EndUser};

/// The fields of `Conversation` a brief row answers: all but `summary` and `metadata`
/// (relations need only the ids).
pub const BRIEF_FIELDS: &[&str] = &[
    "__typename",
    "id",
    "title",
    "status",
    "messageCount",
    "createdAt",
    "updatedAt",
    "application",
    "endUser",
    "messages",
];

/// The fields of `EndUser` a brief row answers: who it is and how a list shows them.
pub const BRIEF_END_USER_FIELDS: &[&str] =
    &["__typename", "id", "externalUserId", "name", "avatarUrl"];

/// Whether every field a page (`look`) asks of its conversations, and of their end users,
/// is answered by a brief row.
pub fn brief_enough(look: &Lookahead<'_>) -> bool {
    page_asks_only(look, |field| {
        BRIEF_FIELDS.contains(&field.name())
            && (field.name() != "endUser"
                || field
                    .selection_set()
                    .all(|f| BRIEF_END_USER_FIELDS.contains(&f.name())))
    })
}

/// A conversation and its end user, both brief when `BRIEF`.
#[derive(Debug, Clone)]
pub struct ConversationWithEndUser<const BRIEF: bool> {
    pub conversation: Conversation,
    pub end_user: Option<EndUser>,
}

impl<const BRIEF: bool> ConversationWithEndUser<BRIEF> {
    /// The conversation, and its end user (`None` when it has none).
    pub fn into_parts(self) -> (Conversation, Option<EndUser>) {
        (self.conversation, self.end_user)
    }
}

/// The end user's columns under their prefix.
macro_rules! end_user_columns {
    () => {
        "e.id AS eu_id, e.workspace_id AS eu_workspace_id, e.session_id AS eu_session_id, \
         e.external_user_id AS eu_external_user_id, e.name AS eu_name, e.email AS eu_email, \
         e.phone AS eu_phone, e.avatar_url AS eu_avatar_url, e.metadata AS eu_metadata, \
         e.is_anonymous AS eu_is_anonymous, e.last_active_at AS eu_last_active_at, \
         e.created_at AS eu_created_at, e.updated_at AS eu_updated_at"
    };
}

/// The columns of a brief row: a conversation without its summary and metadata, and the
/// end user's identity, name and avatar.
macro_rules! brief_columns {
    () => {
        "t.id, t.workspace_id, t.application_id, t.end_user_id, t.title, t.status, \
         t.message_count, t.created_at, t.updated_at, e.id AS eu_id, \
         e.workspace_id AS eu_workspace_id, e.external_user_id AS eu_external_user_id, \
         e.name AS eu_name, e.avatar_url AS eu_avatar_url"
    };
}

impl<const BRIEF: bool> ListRow for ConversationWithEndUser<BRIEF> {
    const COLUMNS: &'static str = if BRIEF {
        brief_columns!()
    } else {
        concat!("t.*, ", end_user_columns!())
    };
    const JOINS: &'static str =
        "LEFT JOIN end_users e ON e.id = t.end_user_id AND e.workspace_id = t.workspace_id";
    fn parent(&self, list: ListName) -> Uuid {
        self.conversation.parent(list)
    }
    fn cursor(&self) -> Cursor {
        self.conversation.cursor()
    }
}

/// A brief row's conversation: what it did not read is empty, and never answered
/// ([`BRIEF_FIELDS`]).
fn brief_conversation<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Conversation> {
    Ok(Conversation {
        id: NamedRow::get::<SqlUuid, _>(row, "id")?,
        workspace_id: NamedRow::get::<SqlUuid, _>(row, "workspace_id")?,
        application_id: NamedRow::get::<SqlUuid, _>(row, "application_id")?,
        end_user_id: NamedRow::get::<Nullable<SqlUuid>, _>(row, "end_user_id")?,
        title: NamedRow::get::<VarChar, _>(row, "title")?,
        status: NamedRow::get::<VarChar, _>(row, "status")?,
        summary: None,
        message_count: NamedRow::get::<Integer, _>(row, "message_count")?,
        metadata: Value::Null,
        deleted_at: None,
        created_at: NamedRow::get::<Timestamptz, _>(row, "created_at")?,
        updated_at: NamedRow::get::<Timestamptz, _>(row, "updated_at")?,
    })
}

/// A brief row's end user: what it did not read is empty (its times the epoch), and never
/// answered ([`BRIEF_END_USER_FIELDS`]).
fn brief_end_user<'a>(row: &impl NamedRow<'a, Pg>, id: Uuid) -> deserialize::Result<EndUser> {
    Ok(EndUser {
        id,
        workspace_id: NamedRow::get::<SqlUuid, _>(row, "eu_workspace_id")?,
        session_id: None,
        external_user_id: NamedRow::get::<Nullable<Text>, _>(row, "eu_external_user_id")?,
        name: NamedRow::get::<Nullable<Text>, _>(row, "eu_name")?,
        email: None,
        phone: None,
        avatar_url: NamedRow::get::<Nullable<Text>, _>(row, "eu_avatar_url")?,
        metadata: Value::Null,
        is_anonymous: false,
        last_active_at: None,
        created_at: DateTime::UNIX_EPOCH,
        updated_at: DateTime::UNIX_EPOCH,
    })
}

/// An end user read in full under the prefix `eu_`.
fn full_end_user<'a>(row: &impl NamedRow<'a, Pg>, id: Uuid) -> deserialize::Result<EndUser> {
    Ok(EndUser {
        id,
        workspace_id: NamedRow::get::<SqlUuid, _>(row, "eu_workspace_id")?,
        session_id: NamedRow::get::<Nullable<Text>, _>(row, "eu_session_id")?,
        external_user_id: NamedRow::get::<Nullable<Text>, _>(row, "eu_external_user_id")?,
        name: NamedRow::get::<Nullable<Text>, _>(row, "eu_name")?,
        email: NamedRow::get::<Nullable<Text>, _>(row, "eu_email")?,
        phone: NamedRow::get::<Nullable<Text>, _>(row, "eu_phone")?,
        avatar_url: NamedRow::get::<Nullable<Text>, _>(row, "eu_avatar_url")?,
        metadata: NamedRow::get::<Jsonb, _>(row, "eu_metadata")?,
        is_anonymous: NamedRow::get::<Bool, _>(row, "eu_is_anonymous")?,
        last_active_at: NamedRow::get::<Nullable<Timestamptz>, _>(row, "eu_last_active_at")?,
        created_at: NamedRow::get::<Timestamptz, _>(row, "eu_created_at")?,
        updated_at: NamedRow::get::<Timestamptz, _>(row, "eu_updated_at")?,
    })
}

impl<const BRIEF: bool> QueryableByName<Pg> for ConversationWithEndUser<BRIEF> {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let conversation = if BRIEF {
            brief_conversation(row)?
        } else {
            Conversation::build(row)?
        };
        // The join leaves every column of the end user null when there is none.
        let end_user = match NamedRow::get::<Nullable<SqlUuid>, Option<Uuid>>(row, "eu_id")? {
            None => None,
            Some(id) if BRIEF => Some(brief_end_user(row, id)?),
            Some(id) => Some(full_end_user(row, id)?),
        };
        Ok(ConversationWithEndUser {
            conversation,
            end_user,
        })
    }
}
