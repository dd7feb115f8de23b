//! Finding a document for a builder: those of live datasets in its workspaces.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Actor;
use crate::auth::permissions::visible_workspace_ids;
use crate::db::models::Document;
use crate::db::schema::{datasets, documents};
use crate::error::{AppError, AppResult};

/// A document the actor may see (API keys see none: knowledge is builders' business).
pub async fn visible_document(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<Document> {
    let user_id = actor.user_id()?;
    documents::table
        .find(id)
        .filter(documents::deleted_at.is_null())
        .filter(documents::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .filter(
            documents::dataset_id.eq_any(
                datasets::table
                    .filter(datasets::deleted_at.is_null())
                    .select(datasets::id),
            ),
        )
        .select(Document::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("document"))
}

/// Whether a stored indexing status is final.
pub fn is_finished(status: &str) -> bool {
    matches!(status, "COMPLETED" | "ERROR")
}
