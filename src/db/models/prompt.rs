//! Diesel models: prompt templates and their versions.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::{prompt_template_versions, prompt_templates};

/// A row of `prompt_templates`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = prompt_templates, check_for_backend(diesel::pg::Pg))]
pub struct PromptTemplate {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `prompt_template_versions`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = prompt_template_versions, check_for_backend(diesel::pg::Pg))]
pub struct PromptTemplateVersion {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub prompt_template_id: Uuid,
    pub version_number: i32,
    pub content: String,
    pub variables: Value,
    pub is_current: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}
