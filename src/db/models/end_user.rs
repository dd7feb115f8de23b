//! Diesel models: end users of published applications.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::end_users;

/// A row of `end_users`.
/// Also read back from `row_to_json` when joined into another statement.
#[derive(
    Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable, serde::Deserialize,
)]
#[diesel(table_name = end_users, check_for_backend(diesel::pg::Pg))]
pub struct EndUser {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub session_id: Option<String>,
    pub external_user_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub avatar_url: Option<String>,
    pub metadata: Value,
    pub is_anonymous: bool,
    pub last_active_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
