//! Diesel models: model providers configured per workspace.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::llm_providers;

/// A row of `llm_providers`.
// No Debug: the row holds secret material that must never reach a log.
#[derive(Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = llm_providers, check_for_backend(diesel::pg::Pg))]
pub struct LlmProvider {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub provider_type: String,
    pub base_url: Option<String>,
    pub api_key_encrypted: Option<Vec<u8>>,
    pub models: Value,
    pub default_model: Option<String>,
    pub embedding_model: Option<String>,
    pub max_tokens: Option<i64>,
    pub used_tokens: i64,
    pub is_enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
