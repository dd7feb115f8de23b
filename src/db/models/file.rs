//! Diesel models: uploaded files kept in the object store.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::file_references;

/// A row of `file_references`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = file_references, check_for_backend(diesel::pg::Pg))]
pub struct FileReference {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub storage_key: String,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}
