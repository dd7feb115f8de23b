//! Diesel models: workflows, their versions and graphs, templates and runs.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::{
    connections, execution_records, node_execution_results, nodes, workflow_templates,
    workflow_versions, workflows,
};

/// A row of `workflow_templates`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = workflow_templates, check_for_backend(diesel::pg::Pg))]
pub struct WorkflowTemplate {
    pub id: Uuid,
    pub official_key: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub graph: Value,
    pub is_official: bool,
    pub is_public: bool,
    pub created_by: Option<Uuid>,
    pub source_workflow_id: Option<Uuid>,
    pub usage_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A row of `workflows`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = workflows, check_for_backend(diesel::pg::Pg))]
pub struct Workflow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub source_type: String,
    pub source_template_id: Option<Uuid>,
    pub source_workflow_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What applications, API keys and end users run (none: the draft, never published).
    pub published_version_id: Option<Uuid>,
}

/// A row of `workflow_versions`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = workflow_versions, check_for_backend(diesel::pg::Pg))]
pub struct WorkflowVersion {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub sequence_number: i32,
    pub parent_version_id: Option<Uuid>,
    pub is_current: bool,
    pub graph: Value,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A row of `nodes`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = nodes, check_for_backend(diesel::pg::Pg))]
pub struct Node {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub version_id: Uuid,
    pub node_key: String,
    pub node_type: String,
    pub title: Option<String>,
    pub config: Value,
    pub position_x: Option<f64>,
    pub position_y: Option<f64>,
    pub created_at: DateTime<Utc>,
}

/// A row of `connections`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = connections, check_for_backend(diesel::pg::Pg))]
pub struct Connection {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub version_id: Uuid,
    pub source_node_key: String,
    pub target_node_key: String,
    pub source_handle: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A row of `execution_records`.
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
#[diesel(table_name = execution_records, check_for_backend(diesel::pg::Pg))]
pub struct ExecutionRecord {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub version_id: Uuid,
    pub status: String,
    pub inputs: Value,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub elapsed_ms: Option<i64>,
    pub total_tokens: i32,
    pub total_steps: i32,
    pub triggered_by_user_id: Option<Uuid>,
    pub triggered_by_application_id: Option<Uuid>,
    pub triggered_by_end_user_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The seq of the event that ended its stream, once it has.
    pub stream_seq: Option<i64>,
    /// The last node started that is still running (null once the run ends).
    pub current_node_key: Option<String>,
    pub current_node_type: Option<String>,
}

/// A row of `node_execution_results`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = node_execution_results, check_for_backend(diesel::pg::Pg))]
pub struct NodeExecutionResult {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub execution_id: Uuid,
    pub node_key: String,
    pub node_type: String,
    pub title: Option<String>,
    pub status: String,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub elapsed_ms: Option<i64>,
    pub total_tokens: i32,
    pub sequence_index: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What a CODE node wrote to its console.
    pub console: Option<Value>,
}
