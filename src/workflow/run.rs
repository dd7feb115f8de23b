//! Starting and stopping runs. A run is enqueued in the transaction that creates its
//! execution (QUEUED), so the request returns at once and a worker of any instance runs
//! it; a stop reaches the run wherever it runs (directly here, by a signal elsewhere, and
//! by the job's flag which the run's lease renewal reads).

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::executions::{is_finished, visible_execution};
use super::graph::{Graph, NodeType};
use super::publishing::{Edition, version_to_run};
use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{ExecutionRecord, Workflow, WorkflowVersion};
use crate::db::schema::{applications, execution_records, workflow_versions, workflows};
use crate::db::statement::KeepPrepared;
use crate::engine::finish;
use crate::engine::queue::{self, StopFound};
use crate::engine::run::Outcome;
use crate::error::{AppError, AppResult};

/// The current version of a workflow and its graph.
pub async fn current_version(
    conn: &mut AsyncPgConnection,
    workflow_id: Uuid,
) -> AppResult<(WorkflowVersion, Graph)> {
    let version: WorkflowVersion = workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(workflow_id))
        .filter(workflow_versions::is_current.eq(true))
        .select(WorkflowVersion::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::Conflict("the workflow has no current version".into()))?;
    let graph: Graph = serde_json::from_value(version.graph.clone())
        .map_err(|e| AppError::internal(format!("a stored graph does not parse: {e}")))?;
    Ok((version, graph))
}

/// The run's inputs checked against the START node's declared inputs: required ones
/// present, each of its type; undeclared ones are kept as given.
pub fn check_inputs(graph: &Graph, inputs: Option<Value>) -> AppResult<Value> {
    let mut given = match inputs {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(AppError::bad_input(
                "inputs",
                "inputs must be a JSON object",
            ));
        }
    };
    let declared = graph
        .nodes
        .iter()
        .find(|n| n.node_type == NodeType::Start)
        .and_then(|n| n.config.get("inputs"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for input in declared {
        let Some(name) = input.get("name").and_then(Value::as_str) else {
            continue;
        };
        let field = format!("inputs.{name}");
        let required = input.get("required").and_then(Value::as_bool) == Some(true);
        let kind = input
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string");
        match given.get(name) {
            None | Some(Value::Null) => {
                if required {
                    return Err(AppError::bad_input(
                        field,
                        format!("the input {name} is required"),
                    ));
                }
                given.insert(name.to_string(), Value::Null);
            }
            Some(value) => {
                let fits = match kind {
                    "string" => value.is_string(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    _ => true,
                };
                if !fits {
                    return Err(AppError::bad_input(
                        field,
                        format!("the input {name} must be a {kind}"),
                    ));
                }
            }
        }
    }
    if serde_json::to_vec(&given).map_or(0, |b| b.len()) > 1024 * 1024 {
        return Err(AppError::bad_input(
            "inputs",
            "inputs are larger than 1 MiB",
        ));
    }
    Ok(Value::Object(given))
}

/// The providers the graph's LLM and AGENT nodes call.
pub fn providers_of(graph: &Graph) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.node_type, NodeType::Llm | NodeType::Agent))
        .filter_map(|n| n.config.get("providerId").and_then(Value::as_str))
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A run to enqueue.
pub struct NewRun {
    pub workspace_id: Uuid,
    pub workflow_id: Uuid,
    pub version_id: Uuid,
    pub inputs: Value,
    pub user_id: Option<Uuid>,
    pub application_id: Option<Uuid>,
    pub end_user_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    /// `sys.*` of the run.
    pub sys: Value,
}

/// Creates the QUEUED execution and its job (inside the caller's transaction).
pub async fn enqueue(conn: &mut AsyncPgConnection, run: NewRun) -> AppResult<ExecutionRecord> {
    let execution: ExecutionRecord = diesel::insert_into(execution_records::table)
        .values((
            execution_records::workspace_id.eq(run.workspace_id),
            execution_records::workflow_id.eq(run.workflow_id),
            execution_records::version_id.eq(run.version_id),
            execution_records::status.eq("QUEUED"),
            execution_records::inputs.eq(&run.inputs),
            execution_records::triggered_by_user_id.eq(run.user_id),
            execution_records::triggered_by_application_id.eq(run.application_id),
            execution_records::triggered_by_end_user_id.eq(run.end_user_id),
        ))
        .returning(ExecutionRecord::as_returning())
        .prepared()
        .get_result(conn)
        .await?;
    queue::enqueue(
        conn,
        run.workspace_id,
        execution.id,
        run.message_id,
        json!({ "sys": run.sys }),
    )
    .await?;
    Ok(execution)
}

/// After the enqueueing transaction committed: wake the workers here and elsewhere and
/// tell the workspace's feed.
pub async fn announce_queued(app: &App, execution: &ExecutionRecord) {
    crate::engine::worker::wake_workers(app).await;
    if let Err(e) = app.realtime.execution_changed(execution).await {
        tracing::warn!(error = ?e, "cannot announce a queued run");
    }
}

/// `runWorkflow`: a builder (RUN in the workspace), the draft or the version it names; or
/// the API key of a published application serving this workflow, its published version.
pub async fn run_workflow(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    workflow_id: Uuid,
    inputs: Option<Value>,
    version: Option<i32>,
) -> AppResult<ExecutionRecord> {
    if matches!(actor, Actor::EndUser { .. }) {
        return Err(AppError::Forbidden);
    }
    let mut conn = app.pool.get().await?;
    let query = workflows::table
        .find(workflow_id)
        .filter(workflows::deleted_at.is_null())
        .select(Workflow::as_select())
        .into_boxed();
    let query = match actor {
        Actor::User { user_id } => {
            query.filter(workflows::workspace_id.eq_any(visible_workspace_ids(user_id)))
        }
        Actor::ApiKey {
            application_id,
            workspace_id,
            ..
        } => query
            .filter(workflows::workspace_id.eq(workspace_id))
            .filter(
                workflows::id.nullable().eq_any(
                    applications::table
                        .filter(applications::id.eq(application_id))
                        .filter(applications::deleted_at.is_null())
                        .filter(applications::status.eq("PUBLISHED"))
                        .select(applications::workflow_id),
                ),
            ),
        Actor::EndUser { .. } => return Err(AppError::Forbidden),
    };
    let workflow: Workflow = query
        .first(&mut conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("workflow"))?;
    let (user_id, application_id) = match actor {
        Actor::User { user_id } => {
            authorize_workspace(&mut conn, actor, workflow.workspace_id, Action::Run).await?;
            (Some(user_id), None)
        }
        Actor::ApiKey { application_id, .. } | Actor::EndUser { application_id, .. } => {
            (None, Some(application_id))
        }
    };
    let edition = match (actor, version) {
        (_, None) => Edition::for_actor(actor),
        (Actor::User { .. }, Some(n)) => Edition::Numbered(n),
        (_, Some(_)) => {
            return Err(AppError::bad_input(
                "version",
                "an application's key runs the published version; only builders choose one",
            ));
        }
    };
    let (version, graph) = version_to_run(&mut conn, &workflow, edition).await?;
    let inputs = check_inputs(&graph, inputs)?;
    crate::llm::provider::check_quotas(&mut conn, workflow.workspace_id, &providers_of(&graph))
        .await?;
    let execution = conn
        .transaction(async |conn| {
            let execution = enqueue(
                conn,
                NewRun {
                    workspace_id: workflow.workspace_id,
                    workflow_id: workflow.id,
                    version_id: version.id,
                    inputs,
                    user_id,
                    application_id,
                    end_user_id: None,
                    message_id: None,
                    sys: json!({ "query": "", "conversationId": null, "endUserId": null }),
                },
            )
            .await?;
            audit::record(
                conn,
                actor,
                client,
                AuditEntry {
                    workspace_id: Some(workflow.workspace_id),
                    action: "execution.run",
                    resource_type: "execution",
                    resource_id: Some(execution.id),
                    metadata: json!({ "workflowId": workflow.id, "versionId": version.id }),
                },
            )
            .await?;
            Ok::<_, AppError>(execution)
        })
        .await?;
    drop(conn);
    announce_queued(app, &execution).await;
    Ok(execution)
}

/// How long a stop waits for the run to write its end before answering.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// `stopExecution`: a builder (RUN in the workspace) or the API key that started it.
pub async fn stop_execution(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    execution_id: Uuid,
) -> AppResult<ExecutionRecord> {
    let mut conn = app.pool.get().await?;
    let execution = visible_execution(&mut conn, actor, execution_id).await?;
    if matches!(actor, Actor::User { .. }) {
        authorize_workspace(&mut conn, actor, execution.workspace_id, Action::Run).await?;
    }
    drop(conn);
    if is_finished(&execution.status) {
        return Ok(execution);
    }
    stop(app, actor, client, &execution).await?;
    wait_for_end(app, execution.id).await
}

/// Asks a run to stop wherever it is (a queued run is finished here and now).
pub async fn stop(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    execution: &ExecutionRecord,
) -> AppResult<()> {
    let mut conn = app.pool.get().await?;
    let id = execution.id;
    let workspace_id = execution.workspace_id;
    let (found, ended) = conn
        .transaction(async |conn| {
            let found = queue::request_stop(conn, id).await?;
            let ended = match &found {
                StopFound::Queued(job) => {
                    Some(finish::write(conn, id, job.message_id, &Outcome::stopped()).await?)
                }
                _ => None,
            };
            audit::record(
                conn,
                actor,
                client,
                AuditEntry {
                    workspace_id: Some(workspace_id),
                    action: "execution.stop",
                    resource_type: "execution",
                    resource_id: Some(id),
                    metadata: json!({}),
                },
            )
            .await?;
            Ok::<_, AppError>((found, ended))
        })
        .await?;
    drop(conn);
    if let Some(ended) = ended {
        finish::announce(app, &ended, Some("stopped"), 0, None).await;
    }
    if found == StopFound::Running {
        crate::engine::worker::cancel_everywhere(app, id).await?;
    }
    Ok(())
}

/// The execution once it has ended, or as it stands after `STOP_WAIT`.
pub async fn wait_for_end(app: &App, execution_id: Uuid) -> AppResult<ExecutionRecord> {
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    loop {
        let mut conn = app.pool.get().await?;
        let execution: ExecutionRecord = execution_records::table
            .find(execution_id)
            .select(ExecutionRecord::as_select())
            .first(&mut conn)
            .await?;
        drop(conn);
        if is_finished(&execution.status) || tokio::time::Instant::now() >= deadline {
            return Ok(execution);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
