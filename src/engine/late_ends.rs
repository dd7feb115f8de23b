//! Streams left without their end: a reply or run that finished while Redis did not answer
//! for longer than `Realtime::publish_patience` could not publish its END (or
//! EXECUTION_FINISHED), and a subscriber following its stream would wait for it. Any
//! instance, on its lease round, finds such rows (finished, no `stream_seq`) and ends their
//! streams from PostgreSQL: the stored message or run is the last event, after whatever the
//! stream holds. A stream that ended meanwhile, or that Redis no longer holds (subscribers
//! then get the stored state), only has its number recorded.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::finish::{StreamEnd, record_stream_seq};
use crate::app::App;
use crate::db::models::{ExecutionRecord, Message};
use crate::db::schema::{execution_records, messages};
use crate::error::{AppError, AppResult};
use crate::realtime::events::{ExecutionEvent, ExecutionEventKind, MessageEvent};
use crate::realtime::streams::StreamKey;

/// Rows looked at per round.
const BATCH: i64 = 100;

/// Ends the streams of replies and runs that finished more than twice the publish patience
/// ago (their own publisher has given up) and within the retention (older streams are gone).
pub async fn end_streams(app: &App) -> AppResult<()> {
    let patience = chrono::Duration::from_std(app.realtime.publish_patience * 2)
        .unwrap_or_else(|_| chrono::Duration::seconds(60));
    let retention = chrono::Duration::from_std(app.config.realtime.stream_retention)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    let (before, after) = (Utc::now() - patience, Utc::now() - retention);
    let mut conn = app.engine.pool.get().await?;
    let replies: Vec<Message> = messages::table
        .filter(messages::stream_seq.is_null())
        .filter(messages::role.eq("ASSISTANT"))
        .filter(messages::status.eq_any(["COMPLETED", "STOPPED", "FAILED"]))
        .filter(messages::updated_at.lt(before))
        .filter(messages::updated_at.gt(after))
        .order(messages::updated_at)
        .limit(BATCH)
        .select(Message::as_select())
        .load(&mut conn)
        .await?;
    let runs: Vec<ExecutionRecord> = execution_records::table
        .filter(execution_records::stream_seq.is_null())
        .filter(execution_records::finished_at.lt(before))
        .filter(execution_records::finished_at.gt(after))
        .order(execution_records::finished_at)
        .limit(BATCH)
        .select(ExecutionRecord::as_select())
        .load(&mut conn)
        .await?;
    drop(conn);
    for message in replies {
        let id = message.id;
        let ended = end_stream(app, StreamKey::Message(id), || {
            let event = if message.status == "FAILED" {
                MessageEvent::error(id, message.error.as_deref().unwrap_or("the reply failed"))
            } else {
                MessageEvent::end(message.clone())
            };
            app.realtime.publish_message_event(event)
        })
        .await?;
        if let Some(seq) = ended {
            record_stream_seq(app, StreamEnd::Message(id), seq).await;
        }
    }
    for run in runs {
        let id = run.id;
        let ended = end_stream(app, StreamKey::Execution(id), || {
            let event = ExecutionEvent::of_run(ExecutionEventKind::ExecutionFinished, run.clone());
            app.realtime.publish_execution_event(event)
        })
        .await?;
        if let Some(seq) = ended {
            record_stream_seq(app, StreamEnd::Execution(id), seq).await;
        }
    }
    Ok(())
}

/// The `seq` the stream ended at: its end if it has one, 0 if Redis holds nothing of it,
/// else that of the last event published now. `None` when that raced with another end
/// (the next round records it).
async fn end_stream<F, Fut>(app: &App, key: StreamKey, publish: F) -> AppResult<Option<i64>>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = AppResult<i64>>,
{
    match app.realtime.stream_state(key).await? {
        (_, Some(end)) => Ok(Some(end)),
        (None, None) => Ok(Some(0)),
        (Some(_), None) => match publish().await {
            Ok(seq) => {
                tracing::info!(?key, seq, "ended a stream left without its end");
                Ok(Some(seq))
            }
            Err(AppError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        },
    }
}
