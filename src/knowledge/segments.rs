//! Builders' edits of single segments: new content (re-indexed at once: tokens, words,
//! keywords, its embedding, the counters), keywords, enabled, archived.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::split::MAX_MAX_TOKENS;
use super::{embed, text, tokens};
use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Dataset, DocumentSegment};
use crate::db::schema::{datasets, document_segments, documents};
use crate::error::{AppError, AppResult};

/// Changes to a segment; `None` keeps what is there.
#[derive(Default)]
pub struct SegmentChanges {
    pub content: Option<String>,
    /// A QA segment's answer (the question is its content).
    pub answer: Option<String>,
    pub keywords: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub archived: Option<bool>,
}

/// A segment of a live document the actor can see, with its dataset.
async fn visible_segment(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<(DocumentSegment, Dataset)> {
    let user_id = actor.user_id()?;
    document_segments::table
        .inner_join(documents::table)
        .inner_join(datasets::table)
        .filter(document_segments::id.eq(id))
        .filter(document_segments::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .filter(documents::deleted_at.is_null())
        .filter(datasets::deleted_at.is_null())
        .select((DocumentSegment::as_select(), Dataset::as_select()))
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("segment"))
}

fn checked_content(content: &str) -> AppResult<(String, usize)> {
    let content = text::clean(content);
    if content.is_empty() {
        return Err(AppError::bad_input("content", "content is empty"));
    }
    let n = tokens::count(&content);
    if n > MAX_MAX_TOKENS {
        return Err(AppError::bad_input(
            "content",
            format!("content is {n} tokens long; a segment holds at most {MAX_MAX_TOKENS}"),
        ));
    }
    Ok((content, n))
}

fn checked_keywords(keywords: &[String]) -> AppResult<Vec<String>> {
    if keywords.len() > 50 {
        return Err(AppError::bad_input("keywords", "at most 50 keywords"));
    }
    keywords
        .iter()
        .map(|k| crate::validate::name("keywords", k, 100))
        .collect()
}

/// Adds `words` and `tokens` to the counts of `segment`'s document and dataset; with
/// `vectors_changed`, the dataset's held vectors become stale.
async fn add_to_counts(
    conn: &mut AsyncPgConnection,
    segment: &DocumentSegment,
    words: i32,
    tokens: i32,
    vectors_changed: bool,
) -> AppResult<()> {
    diesel::update(documents::table.find(segment.document_id))
        .set((
            documents::word_count.eq(documents::word_count + words),
            documents::tokens.eq(documents::tokens + tokens),
        ))
        .execute(conn)
        .await?;
    diesel::update(datasets::table.find(segment.dataset_id))
        .set((
            datasets::word_count.eq(datasets::word_count + words),
            datasets::tokens.eq(datasets::tokens + tokens),
            datasets::embedding_version
                .eq(datasets::embedding_version + i64::from(vectors_changed)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// `updateSegment` (EDITOR and up). New content is embedded first (for a dataset with an
/// embedding model, with no pooled connection held and an interactive caller's patience),
/// then written with the counters in one transaction.
pub async fn update_segment(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    changes: SegmentChanges,
) -> AppResult<DocumentSegment> {
    let content = changes
        .content
        .as_deref()
        .map(checked_content)
        .transpose()?;
    let keywords = changes
        .keywords
        .as_deref()
        .map(checked_keywords)
        .transpose()?;
    let answer = changes
        .answer
        .as_deref()
        .map(|a| {
            checked_content(a).map_err(|_| {
                AppError::bad_input(
                    "answer",
                    format!("answer is empty or longer than {MAX_MAX_TOKENS} tokens"),
                )
            })
        })
        .transpose()?;
    let (segment, embedder) = {
        let mut conn = app.pool.get().await?;
        let (segment, dataset) = visible_segment(&mut conn, actor, id).await?;
        authorize_workspace(&mut conn, actor, segment.workspace_id, Action::Build).await?;
        if answer.is_some() && segment.answer.is_none() {
            return Err(AppError::bad_input(
                "answer",
                "only the segments of QA documents have an answer",
            ));
        }
        let embedder = match &content {
            Some(_) => embed::embedder(app, &mut conn, &dataset).await?,
            None => None,
        };
        (segment, embedder)
    };
    let embedding = match (&content, embedder) {
        (Some((content, _)), Some(model)) => embed::embed(
            app,
            &model.interactive(app.engine.config.interactive_timeout),
            std::slice::from_ref(content),
        )
        .await?
        .pop()
        .map(|v| v.into_iter().map(Some).collect::<Vec<_>>()),
        _ => None,
    };
    let mut conn = app.pool.get().await?;
    conn.transaction(async |conn| {
        let current: DocumentSegment = document_segments::table
            .find(segment.id)
            .select(DocumentSegment::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            // Replaced by a re-indexing meanwhile.
            .ok_or(AppError::NotFound("segment"))?;
        let now = Utc::now();
        let enabled = changes.enabled.unwrap_or(current.enabled);
        let (disabled_at, disabled_by) = match (current.enabled, enabled) {
            (true, false) => (Some(now), actor.user_id().ok()),
            (_, true) => (None, None),
            (false, false) => (current.disabled_at, current.disabled_by),
        };
        let mut updated: DocumentSegment = diesel::update(document_segments::table.find(id))
            .set((
                document_segments::enabled.eq(enabled),
                document_segments::disabled_at.eq(disabled_at),
                document_segments::disabled_by.eq(disabled_by),
                document_segments::archived.eq(changes.archived.unwrap_or(current.archived)),
            ))
            .returning(DocumentSegment::as_returning())
            .get_result(conn)
            .await?;
        if let Some((content, n)) = &content {
            let words = text::word_count(content) as i32;
            let tokens = *n as i32;
            let found = keywords
                .clone()
                .unwrap_or_else(|| text::keywords(content, 10));
            updated = diesel::update(document_segments::table.find(id))
                .set((
                    document_segments::content.eq(content),
                    document_segments::word_count.eq(words),
                    document_segments::tokens.eq(tokens),
                    document_segments::keywords.eq(json!(found)),
                    document_segments::index_node_hash
                        .eq(hex::encode(Sha256::digest(content.as_bytes()))),
                    document_segments::embedding.eq(&embedding),
                ))
                .returning(DocumentSegment::as_returning())
                .get_result(conn)
                .await?;
            // The content's vector changed (or is gone): held vectors are stale.
            let (dw, dt) = (words - current.word_count, tokens - current.tokens);
            add_to_counts(conn, &current, dw, dt, true).await?;
        }
        if let (Some((answer, n)), Some(old)) = (&answer, &current.answer) {
            updated = diesel::update(document_segments::table.find(id))
                .set(document_segments::answer.eq(answer))
                .returning(DocumentSegment::as_returning())
                .get_result(conn)
                .await?;
            let dw = text::word_count(answer) as i32 - text::word_count(old) as i32;
            let dt = *n as i32 - tokens::count(old) as i32;
            add_to_counts(conn, &current, dw, dt, false).await?;
        }
        if content.is_none()
            && let Some(keywords) = &keywords
        {
            updated = diesel::update(document_segments::table.find(id))
                .set(document_segments::keywords.eq(json!(keywords)))
                .returning(DocumentSegment::as_returning())
                .get_result(conn)
                .await?;
        }
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "segment.update",
                resource_type: "document_segment",
                resource_id: Some(updated.id),
                metadata: json!({
                    "documentId": updated.document_id,
                    "contentChanged": content.is_some(),
                    "answerChanged": answer.is_some(),
                    "enabled": updated.enabled,
                    "archived": updated.archived,
                }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}
