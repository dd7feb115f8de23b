//! A conversation with its end user, read in the page's statement when the page shows them.
//!
//! The end user is joined to the page (`LEFT JOIN end_users e`) and its columns are read
//! beside the conversation's, each under the prefix `eu_`: in binary, as the conversation's
//! are, where a `row_to_json` of the end user cost the list's statement more than the rest
//! of its page. The end user must be of the conversation's workspace, as every viewer who
//! sees the conversation may see its end user.

use diesel::deserialize::{self, QueryableByName};
use diesel::pg::Pg;
use diesel::row::NamedRow;
use diesel::sql_types::{Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::lists::ListName;
use super::loaders::ListRow;
use super::pagination::Cursor;
use crate::db::models::{Conversation, EndUser};

#[derive(Debug, Clone)]
pub struct ConversationWithEndUser {
    pub conversation: Conversation,
    pub end_user: Option<EndUser>,
}

impl ConversationWithEndUser {
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

impl ListRow for ConversationWithEndUser {
    const COLUMNS: &'static str = concat!("t.*, ", end_user_columns!());
    const JOINS: &'static str =
        "LEFT JOIN end_users e ON e.id = t.end_user_id AND e.workspace_id = t.workspace_id";
    fn parent(&self, list: ListName) -> Uuid {
        self.conversation.parent(list)
    }
    fn cursor(&self) -> Cursor {
        self.conversation.cursor()
    }
}

impl QueryableByName<Pg> for ConversationWithEndUser {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let conversation = Conversation::build(row)?;
        // The join leaves every column of the end user null when there is none.
        let end_user = match NamedRow::get::<Nullable<SqlUuid>, Option<Uuid>>(row, "eu_id")? {
            None => None,
            Some(id) => Some(EndUser {
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
                last_active_at: NamedRow::get::<Nullable<Timestamptz>, _>(
                    row,
                    "eu_last_active_at",
                )?,
                created_at: NamedRow::get::<Timestamptz, _>(row, "eu_created_at")?,
                updated_at: NamedRow::get::<Timestamptz, _>(row, "eu_updated_at")?,
            }),
        };
        Ok(ConversationWithEndUser {
            conversation,
            end_user,
        })
    }
}
