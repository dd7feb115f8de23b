//! The root `Subscription`: the five live views of API.md. Each checks that the caller may
//! see what it asks for, then follows the replayable stream (messages, executions) or the
//! feed (workspace runs, conversation messages, document progress), ending with FORBIDDEN
//! when a change of membership takes that right away (`live_rights`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_graphql::{Context, ErrorExtensions, Result, Subscription};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::conversation::MessageObject;
use super::dataset::DocumentObject;
use super::execution::{ExecutionEventObject, ExecutionRecordObject};
use super::feed::{self, CatchUp};
use super::live_rights::{RightsWatch, Watched};
use super::message_event::MessageEventObject;
use super::shared::Sharing;
use crate::app::App;
use crate::auth::Action;
use crate::auth::permissions::authorize_workspace;
use crate::conversation::lookup::{messages_changed_since, visible_conversation, visible_message};
use crate::db::models::{ExecutionRecord, Message};
use crate::error::{AppError, AppResult};
use crate::knowledge::documents::{self, visible_document};
use crate::metrics::{Deliveries, Metrics};
use crate::realtime::bus::{Delivery, Missed, Subscription as BusSubscription};
use crate::realtime::events::{Event, ExecutionEvent, ExecutionEventKind, MessageEvent};
use crate::realtime::replay;
use crate::realtime::streams::StreamKey;
use crate::workflow::executions::{self, visible_execution};

/// The subscriptions one connection may still open (WebSocket connection data).
#[derive(Clone)]
pub struct SubscriptionBudget(pub Arc<Semaphore>);

/// Held by an open subscription: its place in the connection's budget and the gauge.
struct Open {
    _permit: Option<OwnedSemaphorePermit>,
    metrics: Arc<Metrics>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics
            .subscriptions_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a place in the connection's budget (RATE_LIMITED when there is none left).
fn reserve(ctx: &Context<'_>, app: &App) -> Result<Option<OwnedSemaphorePermit>> {
    match ctx.data_opt::<SubscriptionBudget>() {
        Some(budget) => Ok(Some(budget.0.clone().try_acquire_owned().map_err(
            |_| {
                async_graphql::Error::new(format!(
                    "at most {} subscriptions per connection",
                    app.config.realtime.max_subscriptions_per_connection
                ))
                .extend_with(|_, e| e.set("code", "RATE_LIMITED"))
            },
        )?)),
        None => Ok(None),
    }
}

impl Open {
    /// Counts a subscription once it is in place (subscribed on the bus).
    fn new(permit: Option<OwnedSemaphorePermit>, app: &App) -> Open {
        app.metrics
            .subscriptions_active
            .fetch_add(1, Ordering::Relaxed);
        Open {
            _permit: permit,
            metrics: app.metrics.clone(),
        }
    }
}

/// Rows a feed reads back at most after an interruption.
const CATCH_UP_ROWS: i64 = 500;
/// Active runs a workspace feed starts with, at most.
const ACTIVE_ROWS: i64 = 1_000;

fn after_seq(after: Option<i32>) -> AppResult<i64> {
    match after {
        Some(n) if n < 0 => Err(AppError::bad_input("after", "after must be 0 or more")),
        Some(n) => Ok(i64::from(n)),
        None => Ok(0),
    }
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The reply of an assistant message as it is generated: events with `seq > after`,
    /// ending with END (or ERROR). Resuming with the last `seq` seen loses nothing.
    async fn message_stream(
        &self,
        ctx: &Context<'_>,
        message_id: Uuid,
        after: Option<i32>,
    ) -> Result<BoxStream<'static, Result<MessageEventObject>>> {
        // Boxed: the resolver's future is kept inside its stream for the subscription's
        // life, so only a pointer to it stays once it has run.
        Box::pin(async move {
            // Run again by the transport to resolve events of a stream set up before.
            if let Some(events) = Sharing::resumed(ctx, MessageEventObject) {
                return Ok(events);
            }
            let actor = ctx.actor()?;
            let after = after_seq(after)?;
            let app = ctx.app()?.clone();
            let watch = RightsWatch::open(&app, actor).await;
            let message = visible_message(&mut *conn(&app).await?, actor, message_id).await?;
            // The message and its relations are read with the caller's rights.
            let own = ctx.look_ahead().field("message").exists();
            replayed(
                ctx,
                &app,
                (StreamKey::Message(message_id), after),
                final_message(message),
                (watch, Watched::Message(message_id), own),
                MessageEventObject,
            )
            .await
        })
        .await
    }

    /// The steps of a workflow run: events with `seq > after`, ending with
    /// EXECUTION_FINISHED.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        execution_id: Uuid,
        after: Option<i32>,
    ) -> Result<BoxStream<'static, Result<ExecutionEventObject>>> {
        // Boxed: the resolver's future is kept inside its stream for the subscription's
        // life, so only a pointer to it stays once it has run.
        Box::pin(async move {
            // Run again by the transport to resolve events of a stream set up before.
            if let Some(events) = Sharing::resumed(ctx, ExecutionEventObject) {
                return Ok(events);
            }
            let actor = ctx.actor()?;
            let after = after_seq(after)?;
            let app = ctx.app()?.clone();
            let watch = RightsWatch::open(&app, actor).await;
            let execution = visible_execution(&mut *conn(&app).await?, actor, execution_id).await?;
            // The run's record and its relations are read with the caller's rights.
            let own = ctx.look_ahead().field("execution").exists();
            replayed(
                ctx,
                &app,
                (StreamKey::Execution(execution_id), after),
                final_execution(execution),
                (watch, Watched::Execution(execution_id), own),
                ExecutionEventObject,
            )
            .await
        })
        .await
    }

    /// Every status change of every execution in the workspace, from now on.
    async fn workspace_executions(
        &self,
        ctx: &Context<'_>,
        workspace_id: Uuid,
        #[graphql(
            desc = "First one event per execution QUEUED or RUNNING now (default true), then every change."
        )]
        include_active: Option<bool>,
    ) -> Result<impl Stream<Item = Result<ExecutionRecordObject>> + use<>> {
        // Boxed: the resolver's future is kept inside its stream for the subscription's
        // life, so only a pointer to it stays once it has run.
        Box::pin(async move {
            let actor = ctx.actor()?;
            let app = ctx.app()?.clone();
            let watch = RightsWatch::open(&app, actor).await;
            authorize_workspace(&mut *conn(&app).await?, actor, workspace_id, Action::Read).await?;
            let permit = reserve(ctx, &app)?;
            let channel = app.realtime.names().workspace_executions(workspace_id);
            let since = chrono::Utc::now();
            let feed = app.realtime.bus.subscribe(&channel).await;
            // Read once the live side is in place: a run that changes meanwhile is in one or the
            // other (or both, shown once).
            let active = if include_active.unwrap_or(true) {
                executions::active(&mut *conn(&app).await?, workspace_id, ACTIVE_ROWS).await?
            } else {
                Vec::new()
            };
            let guard = Open::new(permit, &app);
            let reader = app.clone();
            let catch_up: CatchUp<ExecutionRecord> = Box::new(move |since| {
                let app = reader.clone();
                Box::pin(async move {
                    let mut conn = conn(&app).await?;
                    executions::changed_since(&mut conn, workspace_id, since, CATCH_UP_ROWS).await
                })
            });
            let runs = feed::follow(
                feed,
                |event| match event {
                    Event::ExecutionChanged { execution } => Some((**execution).clone()),
                    _ => None,
                },
                catch_up,
                active,
                since,
            )
            .map(|run| run.map(|run| ExecutionRecordObject(run.for_events())));
            Ok(watch.guard(
                app,
                actor,
                Watched::Workspace(workspace_id),
                held(runs, guard),
            ))
        })
        .await
    }

    /// Each new or finished message of the conversation, from now on.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: Uuid,
    ) -> Result<impl Stream<Item = Result<MessageObject>> + use<>> {
        // Boxed: the resolver's future is kept inside its stream for the subscription's
        // life, so only a pointer to it stays once it has run.
        Box::pin(async move {
            let actor = ctx.actor()?;
            let app = ctx.app()?.clone();
            let watch = RightsWatch::open(&app, actor).await;
            visible_conversation(&mut *conn(&app).await?, actor, conversation_id).await?;
            let permit = reserve(ctx, &app)?;
            let channel = app.realtime.names().conversation(conversation_id);
            let since = chrono::Utc::now();
            let feed = app.realtime.bus.subscribe(&channel).await;
            let guard = Open::new(permit, &app);
            let reader = app.clone();
            let catch_up: CatchUp<Message> = Box::new(move |since| {
                let app = reader.clone();
                Box::pin(async move {
                    let mut conn = conn(&app).await?;
                    messages_changed_since(&mut conn, conversation_id, since, CATCH_UP_ROWS).await
                })
            });
            let messages = feed::follow(
                feed,
                |event| match event {
                    Event::MessageChanged { message } => Some((**message).clone()),
                    _ => None,
                },
                catch_up,
                Vec::new(),
                since,
            )
            .map(|message| message.map(MessageObject::of));
            let watched = Watched::Conversation(conversation_id);
            Ok(watch.guard(app, actor, watched, held(messages, guard)))
        })
        .await
    }

    /// The document as its indexing advances: its current state first, then each change,
    /// ending at COMPLETED or ERROR.
    async fn document_indexing(
        &self,
        ctx: &Context<'_>,
        document_id: Uuid,
    ) -> Result<impl Stream<Item = Result<DocumentObject>> + use<>> {
        // Boxed: the resolver's future is kept inside its stream for the subscription's
        // life, so only a pointer to it stays once it has run.
        Box::pin(async move {
            let actor = ctx.actor()?;
            let app = ctx.app()?.clone();
            let watch = RightsWatch::open(&app, actor).await;
            visible_document(&mut *conn(&app).await?, actor, document_id).await?;
            let permit = reserve(ctx, &app)?;
            let channel = app.realtime.names().document(document_id);
            // Subscribed before reading the current state: no change can fall in between.
            let feed = app.realtime.bus.subscribe(&channel).await;
            let guard = Open::new(permit, &app);
            let state = DocumentFeed {
                app: app.clone(),
                actor,
                document_id,
                feed,
                first: true,
                done: false,
            };
            let progress = futures_util::stream::unfold(state, |mut state| async move {
                let item = state.next().await?;
                Some((item, state))
            });
            let watched = Watched::Document(document_id);
            Ok(watch.guard(app, actor, watched, held(progress, guard)))
        })
        .await
    }
}

/// Follows a replayable stream from `after`, ended by `watch` when the caller's right to
/// `watched` goes, each event wrapped for GraphQL. Over WebSocket the events are handed to
/// the transport (`shared`), which answers each with the answer of its subscribers asking
/// the same way, or only the caller's own ones when the selection reads through the event
/// with the caller's rights (`own`).
async fn replayed<T: Send + 'static>(
    ctx: &Context<'_>,
    app: &Arc<App>,
    (key, after): (StreamKey, i64),
    final_state: Option<Event>,
    (watch, watched, own): (RightsWatch, Watched, bool),
    wrap: fn(Arc<Event>) -> T,
) -> Result<BoxStream<'static, Result<T>>> {
    let actor = ctx.actor()?;
    let permit = reserve(ctx, app)?;
    let events = replay::follow(&app.realtime, key, after, final_state).await;
    let guard = Open::new(permit, app);
    let events = held(events.map(|item| item.map_err(Into::into)), guard);
    let followed = watch.guard(app.clone(), actor, watched, events);
    if let Some(sharing) = ctx.data_opt::<Sharing>() {
        let caller = own.then_some(actor);
        return Ok(sharing.hand_over(caller, followed.boxed(), wrap).boxed());
    }
    let deliveries = ctx.data_opt::<Deliveries>().cloned().unwrap_or_default();
    Ok(followed
        .map(move |item| {
            // What the transport writes next: a live event with its publication time.
            let published = item.as_ref().ok().filter(|f| f.live);
            deliveries.handed(published.map(|f| f.event.published_at_us()));
            item.map(|followed| wrap(followed.event))
        })
        .boxed())
}

/// Keeps `guard` (budget place, gauge) for as long as the stream lives.
fn held<S: Stream + Send + 'static>(
    stream: S,
    guard: Open,
) -> impl Stream<Item = S::Item> + Send + 'static {
    stream.map(move |item| {
        let _ = &guard;
        item
    })
}

struct DocumentFeed {
    app: Arc<App>,
    actor: crate::auth::Actor,
    document_id: Uuid,
    feed: BusSubscription,
    first: bool,
    done: bool,
}

impl DocumentFeed {
    async fn next(&mut self) -> Option<Result<DocumentObject>> {
        if self.done {
            return None;
        }
        if self.first {
            self.first = false;
            return Some(self.current().await);
        }
        loop {
            match self.feed.recv().await {
                Ok(Delivery::Event(event)) => {
                    if let Event::DocumentChanged { document } = &*event {
                        self.done = documents::is_finished(&document.indexing_status);
                        return Some(Ok(DocumentObject((**document).clone())));
                    }
                }
                // Changes may have been missed: the current state stands for them.
                Ok(Delivery::Resync) | Err(Missed::Lagged) => return Some(self.current().await),
                Err(Missed::Closed) => return None,
            }
        }
    }

    async fn current(&mut self) -> Result<DocumentObject> {
        let found = match conn(&self.app).await {
            Ok(mut conn) => visible_document(&mut conn, self.actor, self.document_id).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(document) => {
                self.done = documents::is_finished(&document.indexing_status);
                Ok(DocumentObject(document))
            }
            Err(e) => {
                self.done = true;
                Err(e.into())
            }
        }
    }
}

/// A finished message as the single END that stands for its expired stream, with the seq
/// its stream ended at (when kept).
fn final_message(message: Message) -> Option<Event> {
    let finished = matches!(message.status.as_str(), "COMPLETED" | "STOPPED" | "FAILED");
    finished.then(|| {
        let seq = message.stream_seq.unwrap_or(0);
        let mut end = MessageEvent::end(message);
        end.seq = seq;
        Event::Message(end)
    })
}

/// A finished run as the single EXECUTION_FINISHED that stands for its expired stream,
/// with the seq its stream ended at (when kept).
fn final_execution(execution: ExecutionRecord) -> Option<Event> {
    executions::is_finished(&execution.status).then(|| {
        let seq = execution.stream_seq.unwrap_or(0);
        let mut end = ExecutionEvent::of_run(ExecutionEventKind::ExecutionFinished, execution);
        end.seq = seq;
        Event::Execution(end)
    })
}
