//! Diesel models: datasets, documents, segments and their links to applications.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::{
    dataset_application_joins, datasets, document_segments, documents, message_retriever_resources,
    parent_segments,
};

/// A row of `datasets`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = datasets, check_for_backend(diesel::pg::Pg))]
pub struct Dataset {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub embedding_model: Option<String>,
    pub embedding_model_provider: Option<String>,
    pub retrieval_model_config: Value,
    pub indexing_technique: String,
    pub document_count: i32,
    pub word_count: i32,
    pub tokens: i32,
    pub similarity_threshold: f32,
    pub vector_similarity_weight: f32,
    pub top_k: i32,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub embedding_provider_id: Option<Uuid>,
    pub embedding_version: i64,
    pub rerank_provider_id: Option<Uuid>,
    pub rerank_model: Option<String>,
}

/// A row of `documents` (without its source text, read only by indexing).
#[derive(
    Debug,
    Clone,
    Queryable,
    QueryableByName,
    Selectable,
    Identifiable,
    serde::Serialize,
    serde::Deserialize,
)]
#[diesel(table_name = documents, check_for_backend(diesel::pg::Pg))]
pub struct Document {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub dataset_id: Uuid,
    pub name: String,
    pub data_source_type: String,
    pub data_source_info: Value,
    pub file_id: Option<Uuid>,
    pub position: i32,
    pub word_count: i32,
    pub tokens: i32,
    pub indexing_status: String,
    pub error: Option<String>,
    pub progress: f32,
    pub progress_msg: Option<String>,
    pub process_begin_at: Option<DateTime<Utc>>,
    pub process_duration: Option<f64>,
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_by: Option<Uuid>,
    pub archived: bool,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Keys and values searches filter on (`knowledge::metadata`).
    #[serde(default)]
    pub doc_metadata: Value,
    /// GENERAL, PARENT_CHILD or QA (`knowledge::chunk`).
    #[serde(default = "general")]
    pub chunk_mode: String,
}

fn general() -> String {
    "GENERAL".into()
}

/// A row of `document_segments` (without its embedding, read only by retrieval).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = document_segments, check_for_backend(diesel::pg::Pg))]
pub struct DocumentSegment {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub document_id: Uuid,
    pub dataset_id: Uuid,
    pub position: i32,
    pub content: String,
    pub word_count: i32,
    pub tokens: i32,
    pub keywords: Value,
    pub index_node_id: Option<String>,
    pub index_node_hash: Option<String>,
    pub hit_count: i32,
    pub enabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_by: Option<Uuid>,
    pub archived: bool,
    pub status: String,
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// In a PARENT_CHILD document, the parent segment given in this one's place.
    pub parent_segment_id: Option<Uuid>,
    /// In a QA document, the answer to the question that is this segment's content.
    pub answer: Option<String>,
}

/// A row of `parent_segments`: the section of a PARENT_CHILD document its child segments
/// stand for.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = parent_segments, check_for_backend(diesel::pg::Pg))]
pub struct ParentSegment {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub dataset_id: Uuid,
    pub document_id: Uuid,
    pub position: i32,
    pub content: String,
    pub tokens: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `dataset_application_joins`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = dataset_application_joins, check_for_backend(diesel::pg::Pg))]
pub struct DatasetApplicationJoin {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub dataset_id: Uuid,
    pub application_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A row of `message_retriever_resources`: a segment a reply was given.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = message_retriever_resources, check_for_backend(diesel::pg::Pg))]
pub struct RetrieverResource {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub message_id: Uuid,
    pub position: i32,
    pub dataset_id: Uuid,
    pub document_id: Uuid,
    pub segment_id: Option<Uuid>,
    pub node_key: String,
    pub score: f64,
    pub content: String,
    pub document_name: String,
    pub created_at: DateTime<Utc>,
}
