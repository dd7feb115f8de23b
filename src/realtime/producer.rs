//! The one way events are published. The execution engine, the chat pipeline and the
//! indexer call these; each stream event gets the next `seq` of its stream in Redis (or in
//! this process), is retained, and reaches every instance's subscribers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Realtime;
use super::events::{Event, ExecutionEvent, MessageEvent};
use super::history::History;
use super::streams::{AppendAs, Appended, Reseed, StreamKey};
use crate::db::models::{Document, ExecutionRecord, Message};
use crate::error::{AppError, AppResult};
use uuid::Uuid;

impl Realtime {
    /// Publishes an event of an assistant message's reply; returns its `seq`.
    pub async fn publish_message_event(&self, event: MessageEvent) -> AppResult<i64> {
        let key = StreamKey::Message(event.message_id);
        self.append(key, Event::Message(event), AppendAs::UNCOUNTED)
            .await
    }

    /// Publishes an event of a reply whose producer keeps count: `known` is the last `seq`
    /// it saw assigned. `Appended::Vanished` says the stream lost its data and was not
    /// appended to (unless `reseed` let the event re-seed it): the producer puts it back
    /// (`restore_stream`), or sends the whole reply (a REPLACE). The event as kept (with its
    /// `seq`) comes back too.
    pub async fn publish_reply_event(
        &self,
        event: MessageEvent,
        how: AppendAs,
    ) -> AppResult<(Appended, Arc<Event>)> {
        let key = StreamKey::Message(event.message_id);
        let mut kept = event.clone();
        let appended = self.append_counted(key, Event::Message(event), how).await?;
        if let Appended::Seq(seq) = appended {
            kept.seq = seq;
        }
        Ok((appended, Arc::new(Event::Message(kept))))
    }

    /// Publishes an event of a workflow run from a producer that keeps no count (a run's
    /// end written by another instance, a stop while queued); returns its `seq`. The run's
    /// own events (started, finished) are announced on its workspace's feed as well. Inputs
    /// and outputs over 64 KiB travel trimmed (`ExecutionEvent::trimmed`).
    pub async fn publish_execution_event(&self, event: ExecutionEvent) -> AppResult<i64> {
        let event = event.trimmed();
        let key = StreamKey::Execution(event.execution.id);
        let announce = event.announced().then(|| event.execution.clone());
        let seq = self
            .append(key, Event::Execution(event), AppendAs::UNCOUNTED)
            .await?;
        if let Some(execution) = announce {
            self.execution_changed(&execution).await?;
        }
        Ok(seq)
    }

    /// Appends an event of a run whose producer keeps its stream's history (see
    /// `engine::run_stream`): `Appended::Vanished` when the stream lost its data, which the
    /// producer then restores (`restore_stream`) before appending again. The event is
    /// not announced on the workspace's feed: the producer does that once it is kept.
    pub async fn append_run_event(
        &self,
        event: ExecutionEvent,
        known: i64,
        attempt: Uuid,
    ) -> AppResult<(Appended, Arc<Event>)> {
        let event = event.trimmed();
        let key = StreamKey::Execution(event.execution.id);
        let mut kept = event.clone();
        let appended = self
            .append_counted(
                key,
                Event::Execution(event),
                AppendAs {
                    known: Some(known),
                    reseed: Reseed::Never,
                    attempt: Some(attempt),
                },
            )
            .await?;
        if let Appended::Seq(seq) = appended {
            kept.seq = seq;
        }
        Ok((appended, Arc::new(Event::Execution(kept))))
    }

    /// Puts back the events a stream held before Redis lost it (numbered as they were).
    pub async fn restore_stream(&self, key: StreamKey, history: &History) -> AppResult<()> {
        self.store
            .restore(&self.names, self.retention, key, &history.events())
            .await
    }

    /// Announces an execution's new status on its workspace's feed (`workspaceExecutions`).
    pub async fn execution_changed(&self, execution: &ExecutionRecord) -> AppResult<()> {
        let channel = self.names.workspace_executions(execution.workspace_id);
        self.announce(
            &channel,
            Event::ExecutionChanged {
                execution: Box::new(execution.clone().for_events()),
            },
        )
        .await
    }

    /// Announces a new or finished message on its conversation's feed.
    pub async fn message_changed(&self, message: &Message) -> AppResult<()> {
        let channel = self.names.conversation(message.conversation_id);
        self.announce(
            &channel,
            Event::MessageChanged {
                message: Box::new(message.clone()),
            },
        )
        .await
    }

    /// Announces a document's indexing progress (`documentIndexing`).
    pub async fn document_changed(&self, document: &Document) -> AppResult<()> {
        let channel = self.names.document(document.id);
        self.announce(
            &channel,
            Event::DocumentChanged {
                document: Box::new(document.clone()),
            },
        )
        .await
    }

    /// Tells every instance that rights ended or changed (`Event::AccessRevoked`,
    /// `Event::SessionsEnded`, `Event::MembershipChanged`), so that live connections and
    /// subscriptions opened with them close or check again. The change is committed
    /// whatever happens here: a connection that misses the announcement finds out when its
    /// bus resynchronizes, or at its next operation.
    pub async fn rights_changed(&self, event: Event) {
        let channel = self.names.rights();
        if let Err(e) = self.announce(&channel, event).await {
            tracing::warn!(error = %e, "cannot announce a change of rights to live connections");
        }
    }

    /// Tells every instance's workers something (`Event::StopRun`, `Event::RunQueued`).
    pub async fn signal(&self, event: Event) -> AppResult<()> {
        let channel = self.names.control();
        self.announce(&channel, event).await
    }

    /// Appends to a stream whose appends cannot be refused as Vanished (no count, or an
    /// event that may re-seed it); its `seq`.
    async fn append(&self, key: StreamKey, event: Event, how: AppendAs) -> AppResult<i64> {
        match self.append_counted(key, event, how).await? {
            Appended::Seq(seq) => Ok(seq),
            Appended::Vanished => Err(AppError::internal(
                "a stream refused an event that re-seeds it",
            )),
        }
    }

    /// Appends to a stream, counting what was kept.
    async fn append_counted(
        &self,
        key: StreamKey,
        mut event: Event,
        how: AppendAs,
    ) -> AppResult<Appended> {
        event.stamp_publication();
        let appended = self
            .store
            .append(&self.names, self.retention, &self.bus, key, event, how)
            .await?;
        if let Appended::Seq(_) = appended {
            self.metrics
                .stream_events_published
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(appended)
    }

    /// Feed events are not retained: subscribers read the current state from PostgreSQL
    /// when they start and follow changes from there.
    async fn announce(&self, channel: &str, event: Event) -> AppResult<()> {
        match &self.commands {
            Some(commands) => {
                let body = serde_json::to_string(&event)
                    .map_err(|e| AppError::internal(format!("cannot encode an event: {e}")))?;
                let mut conn = commands.clone();
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(body)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(|e| AppError::internal(format!("cannot publish an event: {e}")))?;
            }
            None => self.bus.deliver(channel, Arc::new(event)),
        }
        self.metrics
            .stream_events_published
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
