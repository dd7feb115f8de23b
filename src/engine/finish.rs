//! A run's end: the execution, the reply's message and the job written in one
//! transaction, then the streams ended (END or ERROR for the message, EXECUTION_FINISHED
//! for the run) and the feeds told.

use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::queue;
use super::run::Outcome;
use super::run_stream::RunStream;
use crate::app::App;
use crate::db::models::{ExecutionRecord, Message};
use crate::db::schema::{conversations, execution_records, message_retriever_resources, messages};
use crate::db::statement::KeepPrepared;
use crate::error::{AppError, AppResult};
use crate::realtime::events::{ExecutionEvent, ExecutionEventKind, MessageEvent};
use crate::realtime::streams::{AppendAs, Appended, Reseed};

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
        // The reply before the run: sendMessage writes in this order too (an application's
        // stats slot, then the workspace's run stats), so the two never wait on each other.
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
                    messages::tool_calls.eq(serde_json::json!(outcome.tool_calls)),
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
                .prepared()
                .get_result(conn)
                .await
                .optional()?;
                if let Some(m) = &message {
                    record_resources(conn, m, &outcome.retrieved).await?;
                    diesel::update(conversations::table.find(m.conversation_id))
                        .set(conversations::updated_at.eq(chrono::Utc::now()))
                        .prepared()
                        .execute(conn)
                        .await?;
                }
                message
            }
            None => None,
        };
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
            execution_records::current_node_key.eq(None::<String>),
            execution_records::current_node_type.eq(None::<String>),
            execution_records::finished_at.eq(Some(chrono::Utc::now())),
        ))
        .returning(ExecutionRecord::as_returning())
        .prepared()
        .get_result(conn)
        .await
        .optional()?;
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
/// `reply_seq` is the last `seq` the reply's stream gave out (0: not known): a stream Redis
/// lost is re-seeded by the END after it. `events` is the run's own publisher, when it ran
/// here: its last event goes after the others it holds.
pub async fn announce(
    app: &App,
    ended: &Ended,
    error: Option<&str>,
    reply_seq: i64,
    events: Option<RunStream>,
) {
    if let Some(message) = &ended.message {
        let how = AppendAs {
            known: Some(reply_seq),
            reseed: Reseed::Whole,
            attempt: Some(Uuid::new_v4()),
        };
        let ended_at = publish_last(app, || {
            let event = if message.status == "FAILED" {
                MessageEvent::error(message.id, error.unwrap_or("the reply failed"))
            } else {
                MessageEvent::end(message.clone())
            };
            async move {
                match app.realtime.publish_reply_event(event, how).await? {
                    (Appended::Seq(seq), _) => Ok(seq),
                    // An END states everything: it re-seeds a stream that lost its data.
                    (Appended::Vanished, _) => Err(AppError::internal("a stream refused an END")),
                }
            }
        })
        .await;
        if let Some(seq) = ended_at {
            record_stream_seq(app, StreamEnd::Message(message.id), seq).await;
        }
        if let Err(e) = app.realtime.message_changed(message).await {
            tracing::warn!(message_id = %message.id, error = ?e, "cannot announce a message");
        }
    }
    if let Some(execution) = &ended.execution {
        let last = ExecutionEvent::of_run(ExecutionEventKind::ExecutionFinished, execution.clone());
        let ended_at = match events {
            Some(events) => events.end(last).await,
            None => publish_last(app, || app.realtime.publish_execution_event(last.clone())).await,
        };
        if let Some(seq) = ended_at {
            record_stream_seq(app, StreamEnd::Execution(execution.id), seq).await;
        }
    } else if let Some(events) = events {
        // Ended elsewhere meanwhile: its stream has its end already.
        events.abandon();
    }
}

/// Publishes the event that ends a stream, trying again while Redis is away, for
/// `Realtime::publish_patience` (a stream that ended already is left as it is); its `seq`,
/// when it was kept. One left without its end is ended later by `end_unannounced`.
async fn publish_last<F, Fut>(app: &App, mut publish: F) -> Option<i64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AppResult<i64>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match publish().await {
            Ok(seq) => return Some(seq),
            Err(AppError::Conflict(_)) => return None,
            Err(e) if started.elapsed() < app.realtime.publish_patience => {
                tracing::warn!(error = ?e, "cannot end a stream; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(error = ?e, "cannot end a stream; subscribers read the stored state");
                return None;
            }
        }
    }
}

pub(super) enum StreamEnd {
    Message(Uuid),
    Execution(Uuid),
}

/// Keeps the `seq` that ended a stream with its row: the END that stands for the stream
/// once Redis no longer retains it carries the same number.
pub(super) async fn record_stream_seq(app: &App, end: StreamEnd, seq: i64) {
    let written = async {
        let mut conn = app.engine.pool.get().await?;
        match end {
            StreamEnd::Message(id) => {
                diesel::update(messages::table.find(id))
                    .set(messages::stream_seq.eq(seq))
                    .prepared()
                    .execute(&mut conn)
                    .await?
            }
            StreamEnd::Execution(id) => {
                diesel::update(execution_records::table.find(id))
                    .set(execution_records::stream_seq.eq(seq))
                    .prepared()
                    .execute(&mut conn)
                    .await?
            }
        };
        Ok::<_, AppError>(())
    };
    if let Err(e) = written.await {
        tracing::warn!(error = ?e, "cannot keep the seq that ended a stream");
    }
}

/// Writes and announces the end of a run.
pub async fn finish(
    app: &App,
    execution_id: Uuid,
    message_id: Option<Uuid>,
    outcome: &Outcome,
    events: Option<RunStream>,
) -> AppResult<Ended> {
    let mut conn = app.engine.pool.get().await?;
    let ended = write(&mut conn, execution_id, message_id, outcome).await?;
    drop(conn);
    announce(
        app,
        &ended,
        outcome.error.as_deref(),
        outcome.reply_seq,
        events,
    )
    .await;
    Ok(ended)
}
