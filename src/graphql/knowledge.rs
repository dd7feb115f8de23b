//! The knowledge pipeline in GraphQL: DocumentSegment and RetrievedSegment, searchDataset,
//! and createDocument, updateDocument, reindexDocument, deleteDocument, updateSegment.

use async_graphql::{Context, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::dataset::DocumentObject;
use super::enums::ChunkMode;
use super::loaders::*;
use crate::db::models::{DocumentSegment, ParentSegment, RetrieverResource};
use crate::knowledge::chunk;
use crate::knowledge::documents::{self, DocumentChanges, NewDocument};
use crate::knowledge::retrieval::{self, Hit};

pub struct DocumentSegmentObject(pub DocumentSegment);

#[Object(name = "DocumentSegment")]
impl DocumentSegmentObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn document_id(&self) -> Uuid {
        self.0.document_id
    }
    async fn dataset_id(&self) -> Uuid {
        self.0.dataset_id
    }
    /// Its place in the document, from 0.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn word_count(&self) -> i32 {
        self.0.word_count
    }
    /// Tokens of the content (cl100k_base).
    async fn tokens(&self) -> i32 {
        self.0.tokens
    }
    async fn keywords(&self) -> Vec<String> {
        self.0
            .keywords
            .as_array()
            .map(|k| {
                k.iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// How many searches returned it.
    async fn hit_count(&self) -> i32 {
        self.0.hit_count
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn document(&self, ctx: &Context<'_>) -> Result<Option<DocumentObject>> {
        Ok(ctx
            .loader()?
            .load_one(DocumentById(self.0.document_id))
            .await?
            .map(DocumentObject))
    }
    /// In a QA document: the answer to the question that is this segment's content.
    async fn answer(&self) -> Option<&str> {
        self.0.answer.as_deref()
    }
    /// In a PARENT_CHILD document: the parent this child segment stands for.
    async fn parent_segment_id(&self) -> Option<Uuid> {
        self.0.parent_segment_id
    }
    /// In a PARENT_CHILD document: the parent section, what a search gives in this
    /// segment's place.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<ParentSegmentObject>> {
        let Some(id) = self.0.parent_segment_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(ParentSegmentById(id))
            .await?
            .map(ParentSegmentObject))
    }
}

/// A section of a PARENT_CHILD document: its child segments are searched, it is what a
/// search gives.
pub struct ParentSegmentObject(pub ParentSegment);

#[Object(name = "ParentSegment")]
impl ParentSegmentObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn document_id(&self) -> Uuid {
        self.0.document_id
    }
    async fn dataset_id(&self) -> Uuid {
        self.0.dataset_id
    }
    /// Its place in the document, from 0.
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn tokens(&self) -> i32 {
        self.0.tokens
    }
}

/// A segment found by a search, with its score (0 to 1).
pub struct RetrievedSegmentObject(pub Hit);

#[Object(name = "RetrievedSegment")]
impl RetrievedSegmentObject {
    async fn segment(&self) -> DocumentSegmentObject {
        DocumentSegmentObject(self.0.segment.clone())
    }
    async fn document_id(&self) -> Uuid {
        self.0.segment.document_id
    }
    async fn dataset_id(&self) -> Uuid {
        self.0.segment.dataset_id
    }
    async fn document_name(&self) -> &str {
        &self.0.document_name
    }
    /// The score the results are ordered by: the reranker's when reranked, else keyword
    /// and vector fused (0 to 1).
    async fn score(&self) -> f64 {
        self.0.score
    }
    /// The keyword part (1 for the best keyword match of the query).
    async fn keyword_score(&self) -> f64 {
        self.0.keyword_score
    }
    /// The cosine similarity, for datasets searched by vector too.
    async fn vector_score(&self) -> Option<f64> {
        self.0.vector_score
    }
    /// The reranker's relevance score, when a reranker ordered the results (it is then
    /// the score).
    async fn rerank_score(&self) -> Option<f64> {
        self.0.rerank_score
    }
    /// The document's metadata.
    async fn document_metadata(&self) -> Json<Value> {
        Json(self.0.document_metadata.clone())
    }
    /// What the model is given: the segment's text; for a child segment (PARENT_CHILD),
    /// its parent section; for a question (QA), the question and its answer.
    async fn content(&self) -> &str {
        &self.0.context
    }
}

/// A segment a reply was given (a copy, kept when the segment changes).
pub struct RetrieverResourceObject(pub RetrieverResource);

#[Object(name = "RetrieverResource")]
impl RetrieverResourceObject {
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn dataset_id(&self) -> Uuid {
        self.0.dataset_id
    }
    async fn document_id(&self) -> Uuid {
        self.0.document_id
    }
    async fn document_name(&self) -> &str {
        &self.0.document_name
    }
    /// The segment, while it still exists.
    async fn segment_id(&self) -> Option<Uuid> {
        self.0.segment_id
    }
    /// The KNOWLEDGE_RETRIEVAL node that found it.
    async fn node_key(&self) -> &str {
        &self.0.node_key
    }
    async fn score(&self) -> f64 {
        self.0.score
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
}

/// A condition on a document's metadata: exactly one of `eq`, `in` or `range`. A
/// document without the key does not meet it.
#[derive(InputObject)]
pub struct MetadataCondition {
    key: String,
    /// Equal to this string, number or boolean.
    eq: Option<Json<Value>>,
    /// Equal to one of these (1 to 100).
    #[graphql(name = "in")]
    in_: Option<Vec<Json<Value>>>,
    /// Within bounds: numbers, or dates (`2024-05-01`, RFC 3339 with an offset).
    range: Option<MetadataRange>,
}

#[derive(InputObject)]
pub struct MetadataRange {
    gt: Option<Json<Value>>,
    gte: Option<Json<Value>>,
    lt: Option<Json<Value>>,
    lte: Option<Json<Value>>,
}

impl MetadataCondition {
    /// The condition as `knowledge::metadata` reads it (checked there).
    fn into_json(self) -> Value {
        let mut condition = serde_json::Map::new();
        condition.insert("key".into(), Value::String(self.key));
        if let Some(eq) = self.eq {
            condition.insert("eq".into(), eq.0);
        }
        if let Some(values) = self.in_ {
            condition.insert(
                "in".into(),
                Value::Array(values.into_iter().map(|v| v.0).collect()),
            );
        }
        if let Some(range) = self.range {
            let mut bounds = serde_json::Map::new();
            for (name, bound) in [
                ("gt", range.gt),
                ("gte", range.gte),
                ("lt", range.lt),
                ("lte", range.lte),
            ] {
                if let Some(bound) = bound {
                    bounds.insert(name.into(), bound.0);
                }
            }
            condition.insert("range".into(), Value::Object(bounds));
        }
        Value::Object(condition)
    }
}

#[derive(InputObject)]
pub struct CreateDocumentInput {
    dataset_id: Uuid,
    name: String,
    /// The document's text; or give `fileId`.
    text: Option<String>,
    /// An uploaded file of the dataset's workspace: plain text, Markdown, HTML, PDF,
    /// DOCX, CSV or a spreadsheet (XLSX, XLS, ODS).
    file_id: Option<Uuid>,
    /// GENERAL when omitted. A QA document's text is CSV (or its file a CSV file or a
    /// spreadsheet): a question and its answer per row.
    chunk_mode: Option<ChunkMode>,
    /// The longest segment, in tokens (50 to 4000; 500 when omitted, 200 for the child
    /// segments of a PARENT_CHILD document).
    max_tokens: Option<i32>,
    /// Tokens a segment repeats from the end of the one before (at most half of
    /// maxTokens; 50 when omitted, 20 for child segments).
    overlap_tokens: Option<i32>,
    /// PARENT_CHILD documents: the longest parent section, in tokens (50 to 4000; 1000
    /// when omitted).
    parent_max_tokens: Option<i32>,
    /// Keys and values searches can filter on: an object of strings, numbers, booleans
    /// and dates (`2024-05-01`, or RFC 3339 with an offset); at most 50 keys.
    metadata: Option<Json<Value>>,
}

#[derive(InputObject)]
pub struct UpdateDocumentInput {
    id: Uuid,
    name: Option<String>,
    /// New text: the document is indexed again.
    text: Option<String>,
    /// Disabled documents are never retrieved.
    enabled: Option<bool>,
    /// Archived documents are never retrieved.
    archived: Option<bool>,
    max_tokens: Option<i32>,
    overlap_tokens: Option<i32>,
    /// PARENT_CHILD documents: the longest parent section.
    parent_max_tokens: Option<i32>,
    /// Replaces the document's metadata (the document is not indexed again).
    metadata: Option<Json<Value>>,
}

#[derive(InputObject)]
pub struct UpdateSegmentInput {
    id: Uuid,
    /// New text: its tokens, keywords and embedding are computed again at once. In a QA
    /// document, the question.
    content: Option<String>,
    /// In a QA document: a new answer.
    answer: Option<String>,
    /// Keywords to keep instead of those found in the text.
    keywords: Option<Vec<String>>,
    /// Disabled segments are never retrieved.
    enabled: Option<bool>,
    /// Archived segments are never retrieved.
    archived: Option<bool>,
}

#[derive(Default)]
pub struct KnowledgeQuery;

#[Object]
impl KnowledgeQuery {
    /// The segments of a dataset best matching `query` (keyword and, for HIGH_QUALITY
    /// datasets with an embedding model, vector similarity; reranked when the dataset has
    /// a reranker), best first; with `filter`, only segments of documents whose metadata
    /// meets every condition.
    async fn search_dataset(
        &self,
        ctx: &Context<'_>,
        dataset_id: Uuid,
        query: String,
        top_k: Option<i32>,
        filter: Option<Vec<MetadataCondition>>,
    ) -> Result<Vec<RetrievedSegmentObject>> {
        let actor = ctx.actor()?;
        let filter = filter.map(|conditions| {
            Value::Array(
                conditions
                    .into_iter()
                    .map(MetadataCondition::into_json)
                    .collect(),
            )
        });
        let hits = retrieval::search_dataset(
            ctx.app()?,
            actor,
            dataset_id,
            &query,
            top_k,
            filter.as_ref(),
        )
        .await?;
        Ok(hits.into_iter().map(RetrievedSegmentObject).collect())
    }
}

#[derive(Default)]
pub struct KnowledgeMutation;

#[Object]
impl KnowledgeMutation {
    /// Adds a document to a dataset (EDITOR and up); it is indexed in the background
    /// (follow it with `documentIndexing`).
    async fn create_document(
        &self,
        ctx: &Context<'_>,
        input: CreateDocumentInput,
    ) -> Result<DocumentObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let document = documents::create_document(
            &mut conn,
            actor,
            &ctx.client(),
            NewDocument {
                dataset_id: input.dataset_id,
                name: input.name,
                text: input.text,
                file_id: input.file_id,
                max_tokens: input.max_tokens,
                overlap_tokens: input.overlap_tokens,
                chunk_mode: input.chunk_mode.map(|mode| match mode {
                    ChunkMode::General => chunk::ChunkMode::General,
                    ChunkMode::ParentChild => chunk::ChunkMode::ParentChild,
                    ChunkMode::Qa => chunk::ChunkMode::Qa,
                }),
                parent_max_tokens: input.parent_max_tokens,
                metadata: input.metadata.map(|m| m.0),
            },
        )
        .await?;
        drop(conn);
        crate::engine::worker::wake_workers(app).await;
        Ok(DocumentObject(document))
    }

    /// Renames, replaces the text of, enables, disables, archives or restores a document;
    /// new text or split settings index it again.
    async fn update_document(
        &self,
        ctx: &Context<'_>,
        input: UpdateDocumentInput,
    ) -> Result<DocumentObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let (document, reindex) = documents::update_document(
            &mut conn,
            actor,
            &ctx.client(),
            input.id,
            DocumentChanges {
                name: input.name,
                text: input.text,
                enabled: input.enabled,
                archived: input.archived,
                max_tokens: input.max_tokens,
                overlap_tokens: input.overlap_tokens,
                parent_max_tokens: input.parent_max_tokens,
                metadata: input.metadata.map(|m| m.0),
            },
        )
        .await?;
        drop(conn);
        if reindex {
            restart_indexing(app, document.id).await;
        }
        Ok(DocumentObject(document))
    }

    /// Indexes a document again (after an ERROR, say).
    async fn reindex_document(&self, ctx: &Context<'_>, id: Uuid) -> Result<DocumentObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let document = documents::reindex_document(&mut conn, actor, &ctx.client(), id).await?;
        drop(conn);
        restart_indexing(app, document.id).await;
        Ok(DocumentObject(document))
    }

    /// Edits a segment (EDITOR and up): new content is indexed again at once.
    async fn update_segment(
        &self,
        ctx: &Context<'_>,
        input: UpdateSegmentInput,
    ) -> Result<DocumentSegmentObject> {
        let actor = ctx.actor()?;
        let segment = crate::knowledge::segments::update_segment(
            ctx.app()?,
            actor,
            &ctx.client(),
            input.id,
            crate::knowledge::segments::SegmentChanges {
                content: input.content,
                answer: input.answer,
                keywords: input.keywords,
                enabled: input.enabled,
                archived: input.archived,
            },
        )
        .await?;
        Ok(DocumentSegmentObject(segment))
    }

    /// Deletes a document: it leaves search at once.
    async fn delete_document(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        documents::delete_document(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}

/// After a re-indexing was queued: one running anywhere starts over, idle workers wake.
async fn restart_indexing(app: &crate::app::App, document_id: Uuid) {
    if let Err(e) = crate::engine::worker::cancel_everywhere(app, document_id).await {
        tracing::warn!(error = ?e, "cannot tell other instances to restart an indexing");
    }
    crate::engine::worker::wake_workers(app).await;
}

/// `Document.segments`' filter.
#[derive(InputObject, Default)]
pub struct SegmentFilter {
    /// Segments whose text contains this.
    content_contains: Option<String>,
}

impl SegmentFilter {
    pub fn into_list(self) -> super::lists::ListFilter {
        super::lists::ListFilter {
            name_contains: self.content_contains,
            ..Default::default()
        }
    }
}

/// `Message.retrieverResources`.
pub async fn resources_of_message(
    ctx: &Context<'_>,
    message_id: Uuid,
) -> Result<Vec<RetrieverResourceObject>> {
    Ok(ctx
        .loader()?
        .load_one(RetrieverResourcesOfMessage(message_id))
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(RetrieverResourceObject)
        .collect())
}
