//! Documents of datasets: found for a builder (those of live datasets in its workspaces),
//! created from text or an uploaded file, changed, re-indexed, deleted. Indexing itself
//! runs in the background (`indexing`).

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::chunk::{self, ChunkMode};
use super::datasets::dataset_for_building;
use super::extract;
use super::split::SplitRule;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::Document;
use crate::db::schema::{datasets, documents, execution_jobs, file_references};
use crate::engine::queue;
use crate::error::{AppError, AppResult};
use crate::validate;

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

/// The longest text a document may have, in characters.
pub const MAX_TEXT_CHARS: usize = 5_000_000;

/// A new document: its text, or an uploaded file of its workspace to read it from.
pub struct NewDocument {
    pub dataset_id: Uuid,
    pub name: String,
    pub text: Option<String>,
    pub file_id: Option<Uuid>,
    pub max_tokens: Option<i32>,
    pub overlap_tokens: Option<i32>,
    /// GENERAL when omitted (`chunk`).
    pub chunk_mode: Option<ChunkMode>,
    pub parent_max_tokens: Option<i32>,
    /// Keys and values searches filter on (`metadata::check`).
    pub metadata: Option<serde_json::Value>,
}

/// Changes to a document; `None` keeps what is there. New text or a new rule re-indexes.
#[derive(Default)]
pub struct DocumentChanges {
    pub name: Option<String>,
    pub text: Option<String>,
    pub enabled: Option<bool>,
    pub archived: Option<bool>,
    pub max_tokens: Option<i32>,
    pub overlap_tokens: Option<i32>,
    pub parent_max_tokens: Option<i32>,
    /// Replaces the document's metadata (no re-indexing).
    pub metadata: Option<serde_json::Value>,
}

/// The document metadata given, checked.
fn checked_metadata(value: &serde_json::Value) -> AppResult<serde_json::Value> {
    super::metadata::check(value)
        .map(serde_json::Value::Object)
        .map_err(|message| AppError::bad_input("metadata", message))
}

/// The split rule a document gets: `current`'s values where none is given. QA documents
/// are not split (a row is a segment); only PARENT_CHILD ones have parents.
fn rule_of(
    mode: ChunkMode,
    current: SplitRule,
    max_tokens: Option<i32>,
    overlap_tokens: Option<i32>,
    parent_max_tokens: Option<i32>,
) -> AppResult<SplitRule> {
    let field = |name: &'static str, v: i32| {
        usize::try_from(v).map_err(|_| AppError::bad_input(name, format!("{name} is negative")))
    };
    if mode == ChunkMode::Qa {
        for (name, given) in [
            ("maxTokens", max_tokens),
            ("overlapTokens", overlap_tokens),
            ("parentMaxTokens", parent_max_tokens),
        ] {
            if given.is_some() {
                return Err(AppError::bad_input(
                    name,
                    format!("{name} does not apply to QA documents: each row is one segment"),
                ));
            }
        }
        return Ok(current);
    }
    if mode == ChunkMode::General && parent_max_tokens.is_some() {
        return Err(AppError::bad_input(
            "parentMaxTokens",
            "parentMaxTokens applies to PARENT_CHILD documents only",
        ));
    }
    SplitRule {
        max_tokens: max_tokens
            .map(|v| field("maxTokens", v))
            .transpose()?
            .unwrap_or(current.max_tokens),
        overlap_tokens: overlap_tokens
            .map(|v| field("overlapTokens", v))
            .transpose()?
            .unwrap_or(current.overlap_tokens),
        parent_max_tokens: match mode {
            ChunkMode::ParentChild => Some(
                parent_max_tokens
                    .map(|v| field("parentMaxTokens", v))
                    .transpose()?
                    .or(current.parent_max_tokens)
                    .unwrap_or(chunk::DEFAULT_PARENT_MAX_TOKENS),
            ),
            _ => None,
        },
    }
    .checked()
    .map_err(|(field, message)| AppError::bad_input(field, message))
}

/// The rule of a new document of `mode` before anything given.
fn default_rule(mode: ChunkMode) -> SplitRule {
    match mode {
        ChunkMode::ParentChild => chunk::DEFAULT_CHILD_RULE,
        _ => SplitRule::default(),
    }
}

/// A QA document's text: CSV rows of question and answer, checked now so that a bad row
/// is refused with nothing written.
fn checked_pairs(text: &str) -> AppResult<()> {
    let rows = extract::rows_of("text/csv", text.as_bytes())
        .map_err(|message| AppError::bad_input("text", message))?;
    chunk::pairs(&rows)
        .map(|_| ())
        .map_err(|message| AppError::bad_input("text", message))
}

fn checked_text(text: &str) -> AppResult<String> {
    if text.trim().is_empty() {
        return Err(AppError::bad_input("text", "text is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::bad_input(
            "text",
            format!("text is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text.to_string())
}

/// `createDocument` (EDITOR and up): the document WAITING, its indexing queued. The caller
/// wakes the workers once this has committed.
pub async fn create_document(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    input: NewDocument,
) -> AppResult<Document> {
    let name = validate::name("name", &input.name, 255)?;
    let mode = input.chunk_mode.unwrap_or(ChunkMode::General);
    let rule = rule_of(
        mode,
        default_rule(mode),
        input.max_tokens,
        input.overlap_tokens,
        input.parent_max_tokens,
    )?;
    let metadata = input
        .metadata
        .as_ref()
        .map(checked_metadata)
        .transpose()?
        .unwrap_or_else(|| json!({}));
    let text = match (&input.text, input.file_id) {
        (Some(text), None) => {
            let text = checked_text(text)?;
            if mode == ChunkMode::Qa {
                checked_pairs(&text)?;
            }
            Some(text)
        }
        (None, Some(_)) => None,
        _ => {
            return Err(AppError::bad_input(
                "text",
                "give either text or fileId (one of them)",
            ));
        }
    };
    conn.transaction(async |conn| {
        let dataset = dataset_for_building(conn, actor, input.dataset_id).await?;
        if let Some(file_id) = input.file_id {
            let mime_type: String = file_references::table
                .find(file_id)
                .filter(file_references::workspace_id.eq(dataset.workspace_id))
                .select(file_references::mime_type)
                .first(conn)
                .await
                .optional()?
                .ok_or(AppError::NotFound("file"))?;
            if !extract::supported(&mime_type) {
                return Err(AppError::bad_input(
                    "fileId",
                    format!(
                        "files of type {mime_type} cannot be indexed (supported: {})",
                        extract::SUPPORTED.join(", ")
                    ),
                ));
            }
            if mode == ChunkMode::Qa && !extract::tabular(&mime_type) {
                return Err(AppError::bad_input(
                    "fileId",
                    format!(
                        "a QA document is made from a CSV file or a spreadsheet, not {mime_type}"
                    ),
                ));
            }
        }
        let position: i32 = documents::table
            .filter(documents::dataset_id.eq(dataset.id))
            .select(diesel::dsl::max(documents::position))
            .first::<Option<i32>>(conn)
            .await?
            .map_or(0, |p| p + 1);
        let document: Document = diesel::insert_into(documents::table)
            .values((
                documents::workspace_id.eq(dataset.workspace_id),
                documents::dataset_id.eq(dataset.id),
                documents::name.eq(&name),
                documents::data_source_type.eq(if text.is_some() { "TEXT" } else { "FILE" }),
                documents::file_id.eq(input.file_id),
                documents::source_text.eq(&text),
                documents::process_rule.eq(json!(rule)),
                documents::doc_metadata.eq(&metadata),
                documents::chunk_mode.eq(mode.as_str()),
                documents::position.eq(position),
                documents::progress_msg.eq(Some("Waiting to be indexed")),
                documents::created_by.eq(actor.user_id().ok()),
            ))
            .returning(Document::as_returning())
            .get_result(conn)
            .await?;
        diesel::update(datasets::table.find(dataset.id))
            .set(datasets::document_count.eq(datasets::document_count + 1))
            .execute(conn)
            .await?;
        queue::enqueue_indexing(conn, document.workspace_id, document.id).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(document.workspace_id),
                action: "document.create",
                resource_type: "document",
                resource_id: Some(document.id),
                metadata: json!({ "name": name, "datasetId": dataset.id, "fileId": input.file_id }),
            },
        )
        .await?;
        Ok(document)
    })
    .await
}

/// A document of a live dataset the actor may build in, locked for the transaction.
async fn document_for_building(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<(Document, SplitRule)> {
    let document = visible_document(conn, actor, id).await?;
    authorize_workspace(conn, actor, document.workspace_id, Action::Build).await?;
    let (document, rule): (Document, serde_json::Value) = documents::table
        .find(document.id)
        .select((Document::as_select(), documents::process_rule))
        .for_no_key_update()
        .first(conn)
        .await?;
    Ok((document, serde_json::from_value(rule).unwrap_or_default()))
}

/// `updateDocument`: renames, replaces the text, enables, disables, archives or restores
/// a document. New text or a new split rule queues a re-indexing (the old segments serve
/// until the new ones replace them); whether it did is returned beside the document.
pub async fn update_document(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    changes: DocumentChanges,
) -> AppResult<(Document, bool)> {
    let name = changes
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 255))
        .transpose()?;
    let text = changes.text.as_deref().map(checked_text).transpose()?;
    let metadata = changes
        .metadata
        .as_ref()
        .map(checked_metadata)
        .transpose()?;
    conn.transaction(async |conn| {
        let (current, current_rule) = document_for_building(conn, actor, id).await?;
        let mode = ChunkMode::of(&current.chunk_mode);
        if mode == ChunkMode::Qa
            && let Some(text) = &text
        {
            checked_pairs(text)?;
        }
        let rule = rule_of(
            mode,
            current_rule,
            changes.max_tokens,
            changes.overlap_tokens,
            changes.parent_max_tokens,
        )?;
        let reindex = text.is_some() || rule != current_rule;
        let now = Utc::now();
        let enabled = changes.enabled.unwrap_or(current.enabled);
        let (disabled_at, disabled_by) = match (current.enabled, enabled) {
            (true, false) => (Some(now), actor.user_id().ok()),
            (_, true) => (None, None),
            (false, false) => (current.disabled_at, current.disabled_by),
        };
        let mut updated: Document = diesel::update(documents::table.find(current.id))
            .set((
                documents::name.eq(name.clone().unwrap_or(current.name.clone())),
                documents::enabled.eq(enabled),
                documents::disabled_at.eq(disabled_at),
                documents::disabled_by.eq(disabled_by),
                documents::archived.eq(changes.archived.unwrap_or(current.archived)),
                documents::process_rule.eq(json!(rule)),
                documents::doc_metadata.eq(metadata.as_ref().unwrap_or(&current.doc_metadata)),
            ))
            .returning(Document::as_returning())
            .get_result(conn)
            .await?;
        if let Some(text) = &text {
            diesel::update(documents::table.find(current.id))
                .set((
                    documents::source_text.eq(Some(text)),
                    documents::data_source_type.eq("TEXT"),
                ))
                .execute(conn)
                .await?;
            updated.data_source_type = "TEXT".into();
        }
        if reindex {
            updated = queue_indexing_again(conn, &updated).await?;
        }
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "document.update",
                resource_type: "document",
                resource_id: Some(updated.id),
                metadata: json!({
                    "renamed": name.is_some(),
                    "textReplaced": text.is_some(),
                    "metadataReplaced": metadata.is_some(),
                    "enabled": updated.enabled,
                    "archived": updated.archived,
                    "reindexed": reindex,
                }),
            },
        )
        .await?;
        Ok((updated, reindex))
    })
    .await
}

/// Puts the document back to WAITING and queues its indexing (inside the transaction).
async fn queue_indexing_again(
    conn: &mut AsyncPgConnection,
    document: &Document,
) -> AppResult<Document> {
    let updated: Document = diesel::update(documents::table.find(document.id))
        .set((
            documents::indexing_status.eq("WAITING"),
            documents::progress.eq(0.0f32),
            documents::progress_msg.eq(Some("Waiting to be indexed again")),
            documents::error.eq(None::<String>),
        ))
        .returning(Document::as_returning())
        .get_result(conn)
        .await?;
    queue::enqueue_indexing(conn, updated.workspace_id, updated.id).await?;
    Ok(updated)
}

/// `reindexDocument`: indexes a document again from its text or file (after an ERROR, say).
pub async fn reindex_document(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<Document> {
    conn.transaction(async |conn| {
        let (current, _) = document_for_building(conn, actor, id).await?;
        let updated = queue_indexing_again(conn, &current).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "document.reindex",
                resource_type: "document",
                resource_id: Some(updated.id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// `deleteDocument`: the document leaves search at once; its words and tokens leave the
/// dataset's counts; a waiting indexing is dropped (a running one finds it gone).
pub async fn delete_document(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let (current, _) = document_for_building(conn, actor, id).await?;
        diesel::update(documents::table.find(current.id))
            .set(documents::deleted_at.eq(Some(Utc::now())))
            .execute(conn)
            .await?;
        diesel::update(datasets::table.find(current.dataset_id))
            .set((
                datasets::document_count.eq(datasets::document_count - 1),
                datasets::word_count.eq(datasets::word_count - current.word_count),
                datasets::tokens.eq(datasets::tokens - current.tokens),
            ))
            .execute(conn)
            .await?;
        diesel::delete(
            execution_jobs::table
                .filter(execution_jobs::document_id.eq(current.id))
                .filter(execution_jobs::leased_by.is_null()),
        )
        .execute(conn)
        .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "document.delete",
                resource_type: "document",
                resource_id: Some(current.id),
                metadata: json!({ "name": current.name }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
