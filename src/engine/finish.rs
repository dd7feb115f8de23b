//! A run's end: the execution, the reply's message and the job written in one
//! transaction, then the streams ended (END or ERROR for the message, EXECUTION_FINISHED
//! for the run) and the feeds told.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::queue;
use super::run::Outcome;
use crate::app::App;
use crate::db::models::{ExecutionRecord, Message};
use crate::db::schema::{conversations, execution_records, message_retriever_resources, messages};
use crate::error::AppResult;
use crate::realtime::events::{ExecutionEvent, ExecutionEventKind, MessageEvent};

/// What was written.
pub struct Ended {
    pub execution: Option<ExecutionRecord>,
    pub message: Option<Message>,
}

/// Writes the end of a run (if it has not ended already) and removes its job.
pub async fn write(
    conn: &mut AsyncPgConnection,
    execution_id: Uuid,
    message_id: Option<Uuid>,
    outcome: &Outcome,
) -> AppResult<Ended> {
    conn.transaction(async |conn| {
        let execution: Option<ExecutionRecord> = diesel::update(
            execution_records::table
                .find(execution_id)
                .filter(execution_records::status.eq_any(["QUEUED", "RUNNING"])),
        )
        .set((
            execution_records::status.eq(outcome.status),
            execution_records::outputs.eq(Some(&outcome.outputs)),
            execution_records::error.eq(&outcome.error),
            execution_records::elapsed_ms.eq(sql::<BigInt>(
                "COALESCE((EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::bigint, 0)",
            )
            .nullable()),
            execution_records::total_tokens.eq(outcome.usage.total_tokens.max(0)),
            execution_records::total_steps.eq(outcome.steps.max(0)),
            execution_records::finished_at.eq(Some(chrono::Utc::now())),
        ))
        .returning(ExecutionRecord::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        let message = match message_id {
            Some(id) => {
                let status = match outcome.status {
                    "SUCCEEDED" => "COMPLETED",
                    other => other,
                };
                let (provider, model) = outcome.model.clone().unzip();
                let message: Option<Message> = diesel::update(
                    messages::table
                        .find(id)
                        .filter(messages::status.eq_any(["PENDING", "STREAMING"])),
                )
                .set((
                    messages::status.eq(status),
                    messages::content.eq(&outcome.answer),
                    messages::answer.eq(Some(&outcome.answer)),
                    messages::outputs.eq(Some(&outcome.outputs)),
                    messages::error.eq(&outcome.error),
                    messages::model_provider
                        .eq(provider.map(|p| crate::validate::truncate(&p, 100))),
                    messages::model_name.eq(model.map(|m| crate::validate::truncate(&m, 100))),
                    messages::prompt_tokens.eq(outcome.usage.prompt_tokens.max(0)),
                    messages::completion_tokens.eq(outcome.usage.completion_tokens.max(0)),
                    messages::total_tokens.eq(outcome.usage.total_tokens.max(0)),
                    messages::latency.eq(sql::<Double>(
                        "GREATEST(EXTRACT(EPOCH FROM (now() - created_at))::float8, 0)",
                    )
                    .nullable()),
                ))
                .returning(Message::as_returning())
                .get_result(conn)
                .await
                .optional()?;
                if let Some(m) = &message {
                    record_resources(conn, m, &outcome.retrieved).await?;
                    diesel::update(conversations::table.find(m.conversation_id))
                        .set(conversations::updated_at.eq(chrono::Utc::now()))
                        .execute(conn)
                        .await?;
                }
                message
            }
            None => None,
        };
        queue::complete(conn, execution_id).await?;
        Ok(Ended { execution, message })
    })
    .await
}

/// Keeps the segments the reply was given (`Message.retrieverResources`).
async fn record_resources(
    conn: &mut AsyncPgConnection,
    message: &Message,
    retrieved: &[(String, serde_json::Value)],
) -> AppResult<()> {
    let uuid = |v: &serde_json::Value, field: &str| {
        v.get(field)
            .and_then(serde_json::Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    let rows: Vec<_> = retrieved
        .iter()
        .filter_map(|(node_key, found)| {
            Some((
                uuid(found, "datasetId")?,
                uuid(found, "documentId")?,
                uuid(found, "segmentId"),
                node_key,
                found,
            ))
        })
        .enumerate()
        .map(
            |(i, (dataset_id, document_id, segment_id, node_key, found))| {
                (
                    message_retriever_resources::workspace_id.eq(message.workspace_id),
                    message_retriever_resources::message_id.eq(message.id),
                    message_retriever_resources::position.eq(i as i32 + 1),
                    message_retriever_resources::dataset_id.eq(dataset_id),
                    message_retriever_resources::document_id.eq(document_id),
                    message_retriever_resources::segment_id.eq(segment_id),
                    message_retriever_resources::node_key
                        .eq(crate::validate::truncate(node_key, 100)),
                    message_retriever_resources::score.eq(found
                        .get("score")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(0.0)),
                    message_retriever_resources::content.eq(found
                        .get("content")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string()),
                    message_retriever_resources::document_name.eq(crate::validate::truncate(
                        found
                            .get("documentName")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or_default(),
                        255,
                    )),
                )
            },
        )
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(message_retriever_resources::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Ends the streams of what `write` wrote; a failure to publish is logged (the stored state
/// is what an expired or lost stream ends with).
pub async fn announce(app: &App, ended: &Ended, error: Option<&str>) {
    if let Some(message) = &ended.message {
        let event = if message.status == "FAILED" {
            MessageEvent::error(message.id, error.unwrap_or("the reply failed"))
        } else {
            MessageEvent::end(message.clone())
        };
        if let Err(e) = app.realtime.publish_message_event(event).await {
            tracing::warn!(message_id = %message.id, error = ?e, "cannot end a message's stream");
        }
        if let Err(e) = app.realtime.message_changed(message).await {
            tracing::warn!(message_id = %message.id, error = ?e, "cannot announce a message");
        }
    }
    if let Some(execution) = &ended.execution {
        let event =
            ExecutionEvent::of_run(ExecutionEventKind::ExecutionFinished, execution.clone());
        if let Err(e) = app.realtime.publish_execution_event(event).await {
            tracing::warn!(execution_id = %execution.id, error = ?e, "cannot end a run's stream");
        }
    }
}

/// Writes and announces the end of a run.
pub async fn finish(
    app: &App,
    execution_id: Uuid,
    message_id: Option<Uuid>,
    outcome: &Outcome,
) -> AppResult<Ended> {
    let mut conn = app.engine.pool.get().await?;
    let ended = write(&mut conn, execution_id, message_id, outcome).await?;
    drop(conn);
    announce(app, &ended, outcome.error.as_deref()).await;
    Ok(ended)
}
