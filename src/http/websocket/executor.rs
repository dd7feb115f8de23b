//! How a WebSocket connection runs an operation: the operation limits, a check that the
//! socket's credential still stands, the schema, error codes on every response, and for a
//! replayable stream each event answered once for every subscriber asking the same way
//! (`graphql::shared`). Once a stream's events are handed over, the operation's run is
//! dropped (an idle subscription keeps its events only) and run again, resumed, when an
//! event first needs the schema.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use async_graphql::{
    Data, Executor, Request as GraphQLRequest, Response as GraphQLResponse, Variables,
};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

use super::protocol::Answer;
use crate::app::App;
use crate::graphql::documents::DocumentCache;
use crate::graphql::shared::{Handover, Sharing, ToResolve};
use crate::graphql::{WeftSchema, operation_limits, streamed_json};
use crate::http::RequestId;
use crate::http::rights::{Ended, Held, still_held};
use crate::metrics::Metrics;
use crate::realtime::events::Event;
use crate::realtime::replay::Followed;

/// What a connection's operations run with.
pub struct Runner {
    pub schema: WeftSchema,
    pub documents: Arc<DocumentCache>,
    pub app: Arc<App>,
    pub request_id: RequestId,
    pub max_root_fields: usize,
    /// The credential `connection_init` presented, once accepted.
    pub held: Option<Held>,
    /// Told when a check finds the credential gone; the socket then closes with 4403.
    pub lost: Arc<watch::Sender<Option<Ended>>>,
}

impl Runner {
    /// The answers of one operation: one for a query or mutation, one per event for a
    /// subscription.
    pub fn answers(
        &self,
        mut request: GraphQLRequest,
        connection: Arc<Data>,
    ) -> BoxStream<'static, Answer> {
        let sharing = Sharing::of(&request);
        let rerun = Rerun {
            schema: self.schema.clone(),
            connection: connection.clone(),
            documents: self.documents.clone(),
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        };
        request = request.data(sharing.clone());
        self.documents.prepare(&mut request);
        let responses = match operation_limits::refused(&mut request, self.max_root_fields) {
            Some(refused) => futures_util::stream::once(async { refused }).boxed(),
            None => {
                let (schema, app, lost) =
                    (self.schema.clone(), self.app.clone(), self.lost.clone());
                let held = self.held;
                let checked = async move {
                    if let Some(held) = held
                        && let Err(ended) = still_held(&app, held).await
                    {
                        lost.send_replace(Some(ended));
                        return futures_util::stream::once(async move { unauthenticated(ended) })
                            .boxed();
                    }
                    Executor::execute_stream(&schema, request, Some(connection))
                };
                // Boxed: `once` frees it when done (inline, its size would stay with the
                // subscription for its life).
                futures_util::stream::once(Box::pin(checked))
                    .flatten()
                    .boxed()
            }
        };
        Answers {
            responses: Some(responses),
            rerun,
            sharing,
            handover: None,
            to_resolve: None,
            starting: None,
            resolving: None,
            request_id: self.request_id,
            metrics: self.app.metrics.clone(),
        }
        .boxed()
    }
}

/// The answers of one operation: the schema's responses, until a resolver hands its events
/// over; from then on each event answered with the answer kept on it for this way of asking,
/// or given to the schema to resolve (and its answer kept).
struct Answers {
    /// The operation's run: the first until a resolver hands its events over (then dropped),
    /// later the resumed one that resolves events, from the first event that needs it.
    responses: Option<BoxStream<'static, GraphQLResponse>>,
    rerun: Rerun,
    sharing: Sharing,
    handover: Option<Handover>,
    /// Where events go to the resumed run, once it waits for them.
    to_resolve: Option<ToResolve>,
    /// An event waiting for the resumed run to start.
    starting: Option<(async_graphql::Result<Followed>, Resolving)>,
    /// What the schema is resolving, given after the handover.
    resolving: Option<Resolving>,
    request_id: RequestId,
    metrics: Arc<Metrics>,
}

/// What running the operation again takes.
struct Rerun {
    schema: WeftSchema,
    connection: Arc<Data>,
    documents: Arc<DocumentCache>,
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

impl Rerun {
    /// The operation run again to resolve the events sent through `sharing`: no check or
    /// limit again (the first run passed them), the document from the cache.
    fn start(&self, sharing: &Sharing) -> BoxStream<'static, GraphQLResponse> {
        let mut request = GraphQLRequest::new(self.query.clone())
            .variables(self.variables.clone())
            .data(sharing.resume());
        request.operation_name = self.operation_name.clone();
        self.documents.prepare(&mut request);
        Executor::execute_stream(&self.schema, request, Some(self.connection.clone()))
    }
}

/// An event (or the error that ends the events) given to the schema to resolve.
struct Resolving {
    /// The event whose answer is kept once made; `None` for an error.
    event: Option<Arc<Event>>,
    published_at_us: i64,
}

impl Answers {
    /// A response of the schema as sent: with error codes, serialized; and whether it has
    /// no error.
    fn serialized(&self, response: GraphQLResponse) -> (Arc<str>, bool) {
        let clean = response.errors.is_empty();
        (streamed_json(response, Some(self.request_id)).into(), clean)
    }

    /// The schema's next response, before any handover.
    fn poll_schema(&mut self, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let Some(responses) = self.responses.as_mut() else {
            return Poll::Ready(None);
        };
        match responses.poll_next_unpin(cx) {
            // Not a stream event handed over: no publication time to time it by.
            Poll::Ready(Some(response)) => Poll::Ready(Some(Answer {
                payload: self.serialized(response).0,
                published_at_us: 0,
            })),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The schema's answer to what it was given to resolve, kept on its event.
    fn poll_resolved(&mut self, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let Some(responses) = self.responses.as_mut() else {
            return Poll::Ready(None);
        };
        let response = match responses.poll_next_unpin(cx) {
            Poll::Ready(Some(response)) => response,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let (payload, clean) = self.serialized(response);
        let resolving = self.resolving.take();
        let published_at_us = resolving.as_ref().map_or(0, |r| r.published_at_us);
        if let (true, Some(handover), Some(event)) =
            (clean, &self.handover, resolving.and_then(|r| r.event))
            && let Some(renderings) = event.renderings()
        {
            renderings.put(handover.key.clone(), payload.clone());
        }
        Poll::Ready(Some(Answer {
            payload,
            published_at_us,
        }))
    }

    /// The resumed run, until its resolver waits for events: then the waiting one is given
    /// to it (`None`: go on).
    fn poll_started(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Answer>>> {
        let Some(responses) = self.responses.as_mut() else {
            return Some(Poll::Ready(None));
        };
        match responses.poll_next_unpin(cx) {
            Poll::Pending => {
                let mut to_resolve = self.sharing.take_to_resolve()?;
                let (given, resolving) = self.starting.take()?;
                if to_resolve.try_send(given).is_err() {
                    return Some(Poll::Ready(None));
                }
                self.to_resolve = Some(to_resolve);
                self.resolving = Some(resolving);
                None
            }
            // The run answered without waiting for events (an error): that answer is the
            // operation's last.
            Poll::Ready(Some(response)) => {
                self.starting = None;
                self.handover = None;
                self.responses = None;
                Some(Poll::Ready(Some(Answer {
                    payload: self.serialized(response).0,
                    published_at_us: 0,
                })))
            }
            Poll::Ready(None) => Some(Poll::Ready(None)),
        }
    }
}

impl Stream for Answers {
    type Item = Answer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let this = &mut *self;
        loop {
            if this.resolving.is_some() {
                return this.poll_resolved(cx);
            }
            if this.starting.is_some() {
                match this.poll_started(cx) {
                    Some(poll) => return poll,
                    None => continue,
                }
            }
            let Some(handover) = this.handover.as_mut() else {
                // Until the resolver hands its events over (if it does).
                match this.poll_schema(cx) {
                    Poll::Pending => match this.sharing.take() {
                        Some(handover) => {
                            this.handover = Some(handover);
                            // The first run is done with: its resolver's stream ends with
                            // it, and its sender goes with them.
                            this.responses = None;
                            this.sharing.take_to_resolve();
                            continue;
                        }
                        None => return Poll::Pending,
                    },
                    ready => return ready,
                }
            };
            let (given, resolving) = match handover.events.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // No more events: the operation is complete.
                    this.handover = None;
                    this.to_resolve = None;
                    this.responses = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(followed))) => {
                    let published_at_us = if followed.live {
                        followed.event.published_at_us()
                    } else {
                        0
                    };
                    let kept = followed
                        .event
                        .renderings()
                        .and_then(|renderings| renderings.get(&handover.key));
                    if let Some(payload) = kept {
                        this.metrics.answers_shared.fetch_add(1, Ordering::Relaxed);
                        return Poll::Ready(Some(Answer {
                            payload,
                            published_at_us,
                        }));
                    }
                    let event = Some(followed.event.clone());
                    (
                        Ok(followed),
                        Resolving {
                            event,
                            published_at_us,
                        },
                    )
                }
                // The schema words the error as it would its own.
                Poll::Ready(Some(Err(error))) => (
                    Err(error),
                    Resolving {
                        event: None,
                        published_at_us: 0,
                    },
                ),
            };
            match this.to_resolve.as_mut() {
                // The schema has taken the last one given: there is room for this one.
                Some(to_resolve) => {
                    if to_resolve.try_send(given).is_err() {
                        return Poll::Ready(None);
                    }
                    this.resolving = Some(resolving);
                }
                None => {
                    this.responses = Some(this.rerun.start(&this.sharing));
                    this.starting = Some((given, resolving));
                }
            }
        }
    }
}

/// The answer to an operation sent after the connection's credential stopped standing.
fn unauthenticated(ended: Ended) -> GraphQLResponse {
    let error = async_graphql::ServerError::new(ended.reason(), None);
    let mut response = GraphQLResponse::from_errors(vec![error]);
    response.errors[0].extensions = Some({
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "UNAUTHENTICATED");
        extensions
    });
    response
}
