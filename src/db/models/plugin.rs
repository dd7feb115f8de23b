//! Diesel models: the plugin catalogue and installations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::{installed_plugins, plugins};

/// A row of `plugins`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = plugins, check_for_backend(diesel::pg::Pg))]
pub struct Plugin {
    pub id: Uuid,
    pub name: String,
    pub display_name: String,
    pub description: Option<String>,
    pub version: String,
    pub author: Option<String>,
    pub icon: Option<String>,
    pub category: Option<String>,
    pub plugin_type: String,
    pub manifest: Value,
    pub source_url: Option<String>,
    pub documentation_url: Option<String>,
    pub install_count: i32,
    pub rating: Option<f64>,
    pub is_active: bool,
    pub is_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `installed_plugins`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = installed_plugins, check_for_backend(diesel::pg::Pg))]
pub struct InstalledPlugin {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub plugin_id: Uuid,
    pub config: Value,
    pub is_enabled: bool,
    pub installed_by: Option<Uuid>,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
