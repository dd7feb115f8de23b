//! Datasets and documents in GraphQL (metadata; documents are added and indexed by the
//! knowledge pipeline).

use async_graphql::{Context, Enum, InputObject, Json, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::enums::{ChunkMode, parse};
use super::file::FileObject;
use super::knowledge::{DocumentSegmentObject, SegmentFilter};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use crate::db::models::{Dataset, Document};
use crate::knowledge::datasets::{self, DatasetSettings};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndexingTechnique {
    /// Full-text search only.
    Keyword,
    /// Full-text and vector search, with embeddings from a provider.
    HighQuality,
}

impl IndexingTechnique {
    fn as_str(self) -> &'static str {
        match self {
            IndexingTechnique::Keyword => "KEYWORD",
            IndexingTechnique::HighQuality => "HIGH_QUALITY",
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndexingStatus {
    Waiting,
    Parsing,
    Splitting,
    Indexing,
    Completed,
    Error,
}

pub struct DatasetObject(pub Dataset);

#[Object(name = "Dataset")]
impl DatasetObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    async fn indexing_technique(&self) -> async_graphql::Result<IndexingTechnique> {
        Ok(parse(&self.0.indexing_technique)?)
    }
    async fn embedding_model(&self) -> Option<&str> {
        self.0.embedding_model.as_deref()
    }
    async fn embedding_model_provider(&self) -> Option<&str> {
        self.0.embedding_model_provider.as_deref()
    }
    /// The model provider that embeds the segments (HIGH_QUALITY).
    async fn embedding_provider_id(&self) -> Option<Uuid> {
        self.0.embedding_provider_id
    }
    /// The model provider whose rerank endpoint reorders the best candidates of every
    /// search, when one is set.
    async fn rerank_provider_id(&self) -> Option<Uuid> {
        self.0.rerank_provider_id
    }
    async fn rerank_model(&self) -> Option<&str> {
        self.0.rerank_model.as_deref()
    }
    async fn retrieval_model_config(&self) -> Json<Value> {
        Json(self.0.retrieval_model_config.clone())
    }
    async fn document_count(&self) -> i32 {
        self.0.document_count
    }
    async fn word_count(&self) -> i32 {
        self.0.word_count
    }
    async fn tokens(&self) -> i32 {
        self.0.tokens
    }
    /// Hits scoring below this are not retrieved.
    async fn similarity_threshold(&self) -> f64 {
        f64::from(self.0.similarity_threshold)
    }
    /// How much the vector score weighs against the keyword score (0 to 1).
    async fn vector_similarity_weight(&self) -> f64 {
        f64::from(self.0.vector_similarity_weight)
    }
    async fn top_k(&self) -> i32 {
        self.0.top_k
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The dataset's documents, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn documents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<DocumentFilter>,
    ) -> Result<Conn<DocumentObject>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        let f = filter.unwrap_or_default();
        let filter = ListFilter {
            name_contains: f.name_contains,
            status: f.indexing_status.map(|s| format!("{s:?}").to_uppercase()),
            created_after: f.created_after,
            created_before: f.created_before,
            application_id: None,
            ..ListFilter::default()
        };
        child_page(
            ctx,
            ListName::DatasetDocuments,
            self.0.id,
            page,
            filter,
            DocumentObject,
        )
        .await
    }
}

pub struct DocumentObject(pub Document);

#[Object(name = "Document")]
impl DocumentObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// TEXT or FILE.
    async fn data_source_type(&self) -> &str {
        &self.0.data_source_type
    }
    async fn data_source_info(&self) -> Json<Value> {
        Json(self.0.data_source_info.clone())
    }
    async fn file_id(&self) -> Option<Uuid> {
        self.0.file_id
    }
    /// The uploaded file the document was made from.
    async fn file(&self, ctx: &Context<'_>) -> Result<Option<FileObject>> {
        let Some(id) = self.0.file_id else {
            return Ok(None);
        };
        Ok(ctx.loader()?.load_one(FileById(id)).await?.map(FileObject))
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn word_count(&self) -> i32 {
        self.0.word_count
    }
    async fn tokens(&self) -> i32 {
        self.0.tokens
    }
    async fn indexing_status(&self) -> async_graphql::Result<IndexingStatus> {
        Ok(parse(&self.0.indexing_status)?)
    }
    /// 0 to 1.
    async fn progress(&self) -> f64 {
        f64::from(self.0.progress)
    }
    async fn progress_msg(&self) -> Option<&str> {
        self.0.progress_msg.as_deref()
    }
    async fn process_begin_at(&self) -> Option<DateTime<Utc>> {
        self.0.process_begin_at
    }
    /// Seconds the last indexing took.
    async fn process_duration(&self) -> Option<f64> {
        self.0.process_duration
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
    /// How the document is cut into segments.
    async fn chunk_mode(&self) -> async_graphql::Result<ChunkMode> {
        Ok(parse(&self.0.chunk_mode)?)
    }
    /// Keys and values searches can filter on (`searchDataset(filter:)`).
    async fn metadata(&self) -> Json<Value> {
        Json(self.0.doc_metadata.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn dataset(&self, ctx: &Context<'_>) -> Result<Option<DatasetObject>> {
        Ok(ctx
            .loader()?
            .load_one(DatasetById(self.0.dataset_id))
            .await?
            .map(DatasetObject))
    }
    /// The document's segments, in order.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn segments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<SegmentFilter>,
    ) -> Result<Conn<DocumentSegmentObject>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        child_page(
            ctx,
            ListName::DocumentSegments,
            self.0.id,
            page,
            filter.unwrap_or_default().into_list(),
            DocumentSegmentObject,
        )
        .await
    }
}

#[derive(InputObject, Default)]
pub struct DocumentFilter {
    name_contains: Option<String>,
    indexing_status: Option<IndexingStatus>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

#[derive(InputObject, Default)]
pub struct DatasetFilter {
    name_contains: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CreateDatasetInput {
    workspace_id: Uuid,
    name: String,
    description: Option<String>,
    #[graphql(default_with = "IndexingTechnique::Keyword")]
    indexing_technique: IndexingTechnique,
    similarity_threshold: Option<f64>,
    vector_similarity_weight: Option<f64>,
    top_k: Option<i32>,
    /// A model provider of the workspace whose embeddings endpoint embeds the segments
    /// (HIGH_QUALITY datasets).
    embedding_provider_id: Option<Uuid>,
    /// The embedding model, e.g. text-embedding-3-small.
    embedding_model: Option<String>,
    /// A model provider of the workspace whose rerank endpoint (`POST {baseUrl}/rerank`,
    /// as Jina, Cohere-compatible and vLLM servers serve it) reorders the best candidates
    /// of every search.
    rerank_provider_id: Option<Uuid>,
    /// The reranking model, e.g. jina-reranker-v2-base-multilingual.
    rerank_model: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateDatasetInput {
    id: Uuid,
    name: Option<String>,
    description: Option<String>,
    indexing_technique: Option<IndexingTechnique>,
    similarity_threshold: Option<f64>,
    vector_similarity_weight: Option<f64>,
    top_k: Option<i32>,
    /// A model provider of the workspace whose embeddings endpoint embeds the segments
    /// (HIGH_QUALITY datasets).
    embedding_provider_id: Option<Uuid>,
    /// The embedding model, e.g. text-embedding-3-small.
    embedding_model: Option<String>,
    /// A model provider of the workspace whose rerank endpoint reorders the best
    /// candidates of every search; null turns reranking off.
    rerank_provider_id: MaybeUndefined<Uuid>,
    /// The reranking model.
    rerank_model: Option<String>,
}

/// `Workspace.datasets`, newest first.
pub async fn workspace_datasets(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<DatasetFilter>,
) -> Result<Conn<DatasetObject>> {
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        name_contains: f.name_contains,
        status: None,
        created_after: f.created_after,
        created_before: f.created_before,
        application_id: None,
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspaceDatasets,
        workspace_id,
        page,
        filter,
        DatasetObject,
    )
    .await
}

#[derive(Default)]
pub struct DatasetQuery;

#[Object]
impl DatasetQuery {
    /// A dataset the caller can see, or null.
    async fn dataset(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<DatasetObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(DatasetById(id))
            .await?
            .map(DatasetObject))
    }

    /// A document the caller can see, or null.
    async fn document(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<DocumentObject>> {
        let actor = ctx.actor()?;
        let mut conn = super::context::conn(ctx.app()?).await?;
        match crate::knowledge::documents::visible_document(&mut conn, actor, id).await {
            Ok(document) => Ok(Some(DocumentObject(document))),
            Err(crate::error::AppError::NotFound(_) | crate::error::AppError::Forbidden) => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Default)]
pub struct DatasetMutation;

#[Object]
impl DatasetMutation {
    /// Creates a dataset (EDITOR and up).
    async fn create_dataset(
        &self,
        ctx: &Context<'_>,
        input: CreateDatasetInput,
    ) -> Result<DatasetObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let settings = DatasetSettings {
            name: Some(input.name),
            description: input.description,
            indexing_technique: Some(input.indexing_technique.as_str()),
            similarity_threshold: input.similarity_threshold,
            vector_similarity_weight: input.vector_similarity_weight,
            top_k: input.top_k,
            embedding_provider_id: input.embedding_provider_id,
            embedding_model: input.embedding_model,
            rerank_provider_id: input.rerank_provider_id.map(Some),
            rerank_model: input.rerank_model,
        };
        let dataset = datasets::create_dataset(
            &mut conn,
            actor,
            &ctx.client(),
            input.workspace_id,
            settings,
        )
        .await?;
        Ok(DatasetObject(dataset))
    }

    /// Changes a dataset's settings; omitted fields stay as they are.
    async fn update_dataset(
        &self,
        ctx: &Context<'_>,
        input: UpdateDatasetInput,
    ) -> Result<DatasetObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let settings = DatasetSettings {
            name: input.name,
            description: input.description,
            indexing_technique: input.indexing_technique.map(IndexingTechnique::as_str),
            similarity_threshold: input.similarity_threshold,
            vector_similarity_weight: input.vector_similarity_weight,
            top_k: input.top_k,
            embedding_provider_id: input.embedding_provider_id,
            embedding_model: input.embedding_model,
            rerank_provider_id: match input.rerank_provider_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(id)),
            },
            rerank_model: input.rerank_model,
        };
        let (dataset, reindexing) =
            datasets::update_dataset(&mut conn, actor, &ctx.client(), input.id, settings).await?;
        drop(conn);
        if reindexing {
            crate::engine::worker::wake_workers(app).await;
        }
        Ok(DatasetObject(dataset))
    }

    /// Deletes a dataset (EDITOR and up).
    async fn delete_dataset(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        datasets::delete_dataset(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
