//! GraphQL over Server-Sent Events: `POST /graphql` with `Accept: text/event-stream` runs
//! any operation in the "distinct connections" mode of the graphql-sse protocol — each
//! result an `event: next`, then `event: complete`. Proxies are asked not to buffer, a
//! comment keeps the connection alive every 15 s, and shutdown ends the stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::connections::Slot;
use super::rights::{Ended, Held, RightsWatch};
use super::{HttpState, RequestId};
use crate::graphql::streamed_json;
use crate::metrics::{Deliveries, Metrics};
use crate::realtime::woken::Woken;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether the client asks for an event stream.
pub fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// Streams the results of a request, until the caller's rights end (its session ended, its
/// API key revoked, its token expired: see `rights`). A credential that no longer stands (a
/// builder's access token outlives its logout by up to 15 minutes) ends the stream before
/// anything runs.
pub async fn respond(
    state: &HttpState,
    request_id: RequestId,
    responses: BoxStream<'static, async_graphql::Response>,
    // The publication times of the stream events among the responses (their request data).
    deliveries: Deliveries,
    held: Option<Held>,
    slots: [Slot; 2],
) -> Response {
    let app = state.app.clone();
    // Polled when its signal wakes it, not with every frame (`woken`).
    let rights: Woken<Ended> = match held {
        Some(held) => match RightsWatch::open(&app, held).await {
            // Polled before the responses: nothing runs.
            Err(ended) => Woken::new(std::future::ready(ended)),
            Ok(watch) => Woken::new(async move { watch.ended(&app).await }),
        },
        None => Woken::new(std::future::pending()),
    };
    let events = Events {
        responses,
        deliveries,
        metrics: state.app.metrics.clone(),
        request_id,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        stop: super::shutdown(state.stop.clone()),
        rights,
        finished: false,
        _slots: slots,
    };
    let body = futures_util::stream::unfold(events, |mut events| async move {
        let chunk = events.next().await?;
        Some((Ok::<_, Infallible>(chunk), events))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct Events {
    responses: BoxStream<'static, async_graphql::Response>,
    /// The publication times of the stream events among the responses.
    deliveries: Deliveries,
    metrics: Arc<Metrics>,
    request_id: RequestId,
    keep_alive: tokio::time::Interval,
    stop: Woken<()>,
    rights: Woken<Ended>,
    finished: bool,
    /// This connection's places among the live connections of its address and caller.
    _slots: [Slot; 2],
}

impl Events {
    async fn next(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        tokio::select! {
            biased;
            () = self.stop.done() => {
                self.finished = true;
                None
            }
            ended = self.rights.done() => {
                self.finished = true;
                let body = serde_json::json!({ "errors": [{
                    "message": ended.reason(),
                    "extensions": { "code": "UNAUTHENTICATED" },
                }] });
                Some(Bytes::from(format!("event: next\ndata: {body}\n\nevent: complete\ndata:\n\n")))
            }
            response = self.responses.next() => match response {
                Some(response) => {
                    let json = streamed_json(response, Some(self.request_id));
                    let frame = Bytes::from(format!("event: next\ndata: {json}\n\n"));
                    // Handed to the response's body, which writes it to the socket.
                    if let Some(published_at_us) = self.deliveries.next_published() {
                        self.metrics.event_delivered(published_at_us);
                    }
                    Some(frame)
                }
                None => {
                    self.finished = true;
                    Some(Bytes::from_static(b"event: complete\ndata:\n\n"))
                }
            },
            _ = self.keep_alive.tick() => Some(Bytes::from_static(b":\n\n")),
        }
    }
}
