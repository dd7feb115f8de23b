//! Draft and published. Builders edit the draft (the current version) and run it; what
//! applications, API keys and end users run is the version last published
//! (`workflows.published_version_id`), so an edit reaches them only when it is published.
//! A workflow never published runs its draft everywhere.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use super::graph::Graph;
use super::run::current_version;
use super::service::workflow_for_building;
use crate::audit::{self, AuditEntry};
use crate::auth::{Actor, ClientInfo};
use crate::db::models::{Workflow, WorkflowVersion};
use crate::db::schema::{workflow_versions, workflows};
use crate::error::{AppError, AppResult};

/// Which version of a workflow a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// The current version: what builders edit and try.
    Draft,
    /// What applications, API keys and end users run.
    Published,
    /// A version by its sequence number (a builder's choice).
    Numbered(i32),
}

impl Edition {
    /// What `actor` runs when it names no version: builders the draft, everyone else the
    /// published version.
    pub fn for_actor(actor: Actor) -> Edition {
        match actor {
            Actor::User { .. } => Edition::Draft,
            Actor::ApiKey { .. } | Actor::EndUser { .. } => Edition::Published,
        }
    }
}

fn parsed(version: WorkflowVersion) -> AppResult<(WorkflowVersion, Graph)> {
    let graph: Graph = serde_json::from_value(version.graph.clone())
        .map_err(|e| AppError::internal(format!("a stored graph does not parse: {e}")))?;
    Ok((version, graph))
}

async fn numbered(
    conn: &mut AsyncPgConnection,
    workflow_id: Uuid,
    sequence_number: i32,
    field: &str,
) -> AppResult<WorkflowVersion> {
    workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(workflow_id))
        .filter(workflow_versions::sequence_number.eq(sequence_number))
        .select(WorkflowVersion::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| {
            AppError::bad_input(
                field,
                format!("the workflow has no version {sequence_number}"),
            )
        })
}

/// The version of `workflow` (already checked visible to the caller) that `edition` names.
pub async fn version_to_run(
    conn: &mut AsyncPgConnection,
    workflow: &Workflow,
    edition: Edition,
) -> AppResult<(WorkflowVersion, Graph)> {
    match (edition, workflow.published_version_id) {
        (Edition::Draft, _) | (Edition::Published, None) => {
            current_version(conn, workflow.id).await
        }
        (Edition::Published, Some(id)) => {
            let version: WorkflowVersion = workflow_versions::table
                .find(id)
                .filter(workflow_versions::workflow_id.eq(workflow.id))
                .select(WorkflowVersion::as_select())
                .first(conn)
                .await?;
            parsed(version)
        }
        (Edition::Numbered(n), _) => parsed(numbered(conn, workflow.id, n, "version").await?),
    }
}

/// The workflow of `workflow_id` as a run's version is chosen for it (no tenancy check:
/// the caller reached the id through its own workspace).
pub async fn workflow_row(conn: &mut AsyncPgConnection, workflow_id: Uuid) -> AppResult<Workflow> {
    workflows::table
        .find(workflow_id)
        .filter(workflows::deleted_at.is_null())
        .select(Workflow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("workflow"))
}

/// `publishWorkflow`: pins version `sequence_number` (the current one when omitted) as
/// what applications run. Builders (EDITOR and up); audited.
pub async fn publish(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    sequence_number: Option<i32>,
) -> AppResult<Workflow> {
    conn.transaction(async |conn| {
        let workflow = workflow_for_building(conn, actor, workflow_id).await?;
        let version = match sequence_number {
            Some(n) => numbered(conn, workflow.id, n, "sequenceNumber").await?,
            None => current_version(conn, workflow.id).await?.0,
        };
        let published: Workflow = diesel::update(workflows::table.find(workflow.id))
            .set(workflows::published_version_id.eq(version.id))
            .returning(Workflow::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workflow.workspace_id),
                action: "workflow.publish",
                resource_type: "workflow",
                resource_id: Some(workflow.id),
                metadata: json!({
                    "versionId": version.id,
                    "sequenceNumber": version.sequence_number,
                    "previousVersionId": workflow.published_version_id,
                }),
            },
        )
        .await?;
        Ok(published)
    })
    .await
}
