//! GraphQL over WebSocket on `GET /graphql`: the `graphql-transport-ws` protocol and the
//! legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! The caller is authenticated in `connection_init` (`{"authorization": "Bearer ..."}`, or
//! the upgrade request's `Authorization` header); a token that is not valid closes the
//! socket with 4403. Browser origins are checked before upgrading. Frames over 64 KiB close
//! the connection, buffers are small (an idle subscription costs a few KiB), a connection
//! holds at most `WEFT_MAX_SUBSCRIPTIONS` subscriptions, a client that does not read for
//! `WEFT_SEND_TIMEOUT_SECS` is closed (it resumes with `after`), and shutdown closes every
//! socket with 1001. A socket is closed with 4403 when its credential stops standing (see
//! `rights`: token expiry, logout, password reset, key revocation), announced or found
//! when it checks again before each new operation; one that sends no `connection_init`
//! within 10 s is closed with 4408. Every operation passes `graphql::operation_limits`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use async_graphql::http::{ClientMessage, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor, Request as GraphQLRequest, Response as GraphQLResponse};
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{BoxStream, SplitSink};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};

use super::auth::{client_info, credentials, loader_for};
use super::connections::Slot;
use super::rights::{Ended, Held, RightsWatch, still_held};
use super::{HttpState, RequestId};
use crate::app::App;
use crate::auth::Credentials;
use crate::graphql::subscription::SubscriptionBudget;
use crate::graphql::{WeftSchema, classify_response, operation_limits};
use crate::metrics::Deliveries;

/// The largest frame or message a client may send.
pub const MAX_FRAME_BYTES: usize = 64 << 10;

/// Whether a request asks to upgrade to a WebSocket.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Checks the origin and the sub-protocol, then upgrades.
pub async fn upgrade(state: HttpState, mut parts: Parts, peer: SocketAddr) -> Response {
    let headers = parts.headers.clone();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.app.config.allowed_origins.allows(o, host));
        if !allowed {
            return (
                StatusCode::FORBIDDEN,
                "this origin may not open a WebSocket here; see WEFT_ALLOWED_ORIGINS",
            )
                .into_response();
        }
    }
    let protocol = match requested_protocol(&headers) {
        Ok(protocol) => protocol,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client = client_info(&state.app, peer, &headers);
    let max_per_address = state.app.config.http.max_connections_per_address;
    let Some(address_slot) = state
        .live
        .for_address(client.ip.as_deref(), max_per_address)
    else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many live connections from this address (WEFT_MAX_CONNECTIONS_PER_ADDRESS)",
        )
            .into_response();
    };
    upgrade
        .protocols(["graphql-transport-ws", "graphql-ws"])
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let session = Session {
                state,
                protocol,
                authorization,
                client,
                _address_slot: address_slot,
            };
            session.run(socket).await;
        })
}

/// The first protocol of `Sec-WebSocket-Protocol` this server speaks; without the header,
/// `graphql-transport-ws`.
fn requested_protocol(headers: &HeaderMap) -> Result<WebSocketProtocols, String> {
    let Some(value) = headers.get(header::SEC_WEBSOCKET_PROTOCOL) else {
        return Ok(WebSocketProtocols::GraphQLWS);
    };
    let value = value.to_str().unwrap_or_default();
    value
        .split(',')
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        .ok_or_else(|| {
            format!(
                "unsupported Sec-WebSocket-Protocol {value:?}: use graphql-transport-ws or graphql-ws"
            )
        })
}

/// The schema behind the operation limits and a check that the socket's credential still
/// stands, with every response's errors given their codes before they are sent.
#[derive(Clone)]
struct Classified {
    schema: WeftSchema,
    app: Arc<App>,
    request_id: RequestId,
    max_root_fields: usize,
    /// The credential `connection_init` presented.
    held: watch::Receiver<Option<Held>>,
    /// Told when a check finds the credential gone; the socket then closes with 4403.
    lost: Arc<watch::Sender<Option<Ended>>>,
    /// The publication time of the stream event whose frame is about to be written (µs
    /// since the epoch; 0 for none): one frame leaves the protocol's stream at a time, and
    /// the socket's loop takes this once it wrote that frame.
    writing: Arc<AtomicI64>,
}

impl Executor for Classified {
    async fn execute(&self, mut request: GraphQLRequest) -> GraphQLResponse {
        let mut response = match operation_limits::refused(&mut request, self.max_root_fields) {
            Some(refused) => refused,
            None => self.schema.execute(request).await,
        };
        classify_response(&mut response, Some(self.request_id));
        response
    }

    fn execute_stream(
        &self,
        mut request: GraphQLRequest,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, GraphQLResponse> {
        let id = self.request_id;
        let deliveries = Deliveries::default();
        request = request.data(deliveries.clone());
        let writing = self.writing.clone();
        let responses = match operation_limits::refused(&mut request, self.max_root_fields) {
            Some(refused) => futures_util::stream::once(async { refused }).boxed(),
            None => {
                let (schema, app, lost) =
                    (self.schema.clone(), self.app.clone(), self.lost.clone());
                let held = *self.held.borrow();
                let checked = async move {
                    if let Some(held) = held
                        && let Err(ended) = still_held(&app, held).await
                    {
                        lost.send_replace(Some(ended));
                        let error = async_graphql::ServerError::new(ended.reason(), None);
                        let mut response = GraphQLResponse::from_errors(vec![error]);
                        response.errors[0].extensions = Some({
                            let mut extensions = async_graphql::ErrorExtensionValues::default();
                            extensions.set("code", "UNAUTHENTICATED");
                            extensions
                        });
                        return futures_util::stream::once(async { response }).boxed();
                    }
                    Executor::execute_stream(&schema, request, session_data)
                };
                futures_util::stream::once(checked).flatten().boxed()
            }
        };
        responses
            .map(move |mut response| {
                classify_response(&mut response, Some(id));
                writing.store(deliveries.next_published().unwrap_or(0), Ordering::Relaxed);
                response
            })
            .boxed()
    }
}

struct Session {
    state: HttpState,
    protocol: WebSocketProtocols,
    authorization: Option<String>,
    client: crate::auth::ClientInfo,
    /// This socket's place among its address's live connections.
    _address_slot: Slot,
}

type Sink = SplitSink<WebSocket, Message>;

impl Session {
    async fn run(self, socket: WebSocket) {
        // Keeps the server waiting for this socket to close at shutdown.
        let _open = self.state.sessions.clone();
        let mut stop = self.state.stop.clone();
        let app = self.state.app.clone();
        let send_timeout = app.config.realtime.send_timeout;
        let (mut sink, source) = socket.split();
        // A read error ends the input; a frame over the limit is answered with 1009.
        let oversized = Arc::new(AtomicBool::new(false));
        let input = {
            let oversized = oversized.clone();
            source
                .take_while(move |m| {
                    if let Err(e) = m
                        && e.to_string().contains("too long")
                    {
                        oversized.store(true, Ordering::Relaxed);
                    }
                    std::future::ready(matches!(m, Ok(m) if !matches!(m, Message::Close(_))))
                })
                .filter_map(|m| {
                    std::future::ready(match m {
                        Ok(Message::Text(text)) => Some(ClientMessage::from_bytes(text.as_bytes())),
                        Ok(Message::Binary(bytes)) => Some(ClientMessage::from_bytes(bytes)),
                        _ => None,
                    })
                })
        };
        let refused = Arc::new(AtomicBool::new(false));
        let crowded = Arc::new(AtomicBool::new(false));
        // The caller's place among its live connections, once `connection_init` names it.
        let caller_slot: Arc<std::sync::Mutex<Option<Slot>>> = Arc::default();
        let initialised = Arc::new(AtomicBool::new(false));
        // What `connection_init` presented, once it has, and the watch on its rights.
        let (caller, mut accepted) = watch::channel(None);
        let rights_watch: Arc<std::sync::Mutex<Option<RightsWatch>>> = Arc::default();
        let (lost, mut lost_seen) = watch::channel(None);
        let on_init = {
            let refused = refused.clone();
            let crowded = crowded.clone();
            let caller_slot = caller_slot.clone();
            let rights_watch = rights_watch.clone();
            let live = self.state.live.clone();
            let initialised = initialised.clone();
            let app = app.clone();
            let fallback = self.authorization.clone();
            let client = self.client.clone();
            move |payload: serde_json::Value| async move {
                initialised.store(true, Ordering::Relaxed);
                let presented = presented_authorization(&payload).or(fallback);
                let (credentials, held) = credentials(&app, presented.as_deref()).await;
                // The announcements that may end these rights, followed from a check made
                // after subscribing (a builder's access token outlives its session).
                let watched = match held {
                    Some(held) => Some(RightsWatch::open(&app, held).await),
                    None => None,
                };
                if credentials == Credentials::Invalid || matches!(watched, Some(Err(_))) {
                    refused.store(true, Ordering::Relaxed);
                    return Err("Forbidden".into());
                }
                if let (Some(held), Some(Ok(watched))) = (held, watched) {
                    *rights_watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(watched);
                    let max = app.config.http.max_connections_per_user;
                    let Some(slot) = live.for_caller(held.actor, max) else {
                        crowded.store(true, Ordering::Relaxed);
                        return Err(
                            "too many live connections (WEFT_MAX_CONNECTIONS_PER_USER)".into()
                        );
                    };
                    *caller_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(slot);
                    caller.send_replace(Some(held));
                }
                let loader = loader_for(&app, credentials);
                let budget = app.config.realtime.max_subscriptions_per_connection;
                let mut data = Data::default();
                data.insert(credentials);
                data.insert(client);
                data.insert(loader);
                data.insert(SubscriptionBudget(Arc::new(Semaphore::new(budget))));
                Ok(data)
            }
        };
        let writing = Arc::new(AtomicI64::new(0));
        let executor = Classified {
            schema: self.state.schema.clone(),
            app: app.clone(),
            request_id: RequestId::new(),
            max_root_fields: app.config.api_limits.max_root_fields,
            held: accepted.clone(),
            lost: Arc::new(lost),
            writing: writing.clone(),
        };
        let outgoing =
            async_graphql::http::WebSocket::from_message_stream(executor, input, self.protocol)
                .on_connection_init(on_init);
        let mut outgoing = std::pin::pin!(outgoing);
        let rights = async {
            let caller = match accepted.wait_for(Option::is_some).await {
                Ok(caller) => *caller,
                Err(_) => None,
            };
            let watched = rights_watch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let (Some(_), Some(watched)) = (caller, watched) else {
                return std::future::pending().await;
            };
            let withdrawn = async {
                let ended = lost_seen.wait_for(Option::is_some).await.map(|e| *e);
                match ended {
                    Ok(ended) => ended.unwrap_or(Ended::Revoked),
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = watched.ended(&app) => ended,
                ended = withdrawn => ended,
            }
        };
        let mut rights = std::pin::pin!(rights);
        // graphql-ws's rule: no connection_init in time, 4408.
        let init_deadline = tokio::time::sleep(app.config.realtime.init_timeout);
        let mut init_deadline = std::pin::pin!(init_deadline);
        let mut init_checked = false;
        loop {
            let message = tokio::select! {
                biased;
                () = stopped(&mut stop) => {
                    close(&mut sink, 1001, "the server is shutting down").await;
                    return;
                }
                () = &mut init_deadline, if !init_checked => {
                    if !initialised.load(Ordering::Relaxed) {
                        close(&mut sink, 4408, "Connection initialisation timeout").await;
                        return;
                    }
                    init_checked = true;
                    continue;
                }
                ended = &mut rights => {
                    close(&mut sink, 4403, ended.reason()).await;
                    return;
                }
                message = outgoing.next() => message,
            };
            match message {
                Some(WsMessage::Text(text)) => {
                    match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into())))
                        .await
                    {
                        Ok(Ok(())) => {
                            let published_at_us = writing.swap(0, Ordering::Relaxed);
                            if published_at_us > 0 {
                                app.metrics.event_delivered(published_at_us);
                            }
                        }
                        Ok(Err(_)) => return,
                        Err(_) => {
                            tracing::info!(
                                timeout = ?send_timeout,
                                "closing a WebSocket whose client stopped reading"
                            );
                            return;
                        }
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if crowded.load(Ordering::Relaxed) {
                        4429
                    } else if refused.load(Ordering::Relaxed) {
                        4403
                    } else {
                        code
                    };
                    close(&mut sink, code, &reason).await;
                    return;
                }
                None => {
                    if crowded.load(Ordering::Relaxed) {
                        close(&mut sink, 4429, "too many live connections").await;
                    } else if refused.load(Ordering::Relaxed) {
                        close(&mut sink, 4403, "Forbidden").await;
                    } else if oversized.load(Ordering::Relaxed) {
                        close(&mut sink, 1009, "frames are limited to 64 KiB").await;
                    } else {
                        // The client closed (or terminated): flush the close handshake's
                        // answer so it sees a clean close rather than a dropped connection.
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                    }
                    return;
                }
            }
        }
    }
}

/// The `Authorization` a `connection_init` payload carries: `authorization` or
/// `Authorization` at its top level (graphql-ws clients, GraphiQL's headers) or under
/// `headers` (clients that forward their HTTP headers there).
fn presented_authorization(payload: &serde_json::Value) -> Option<String> {
    let find = |object: &serde_json::Value| {
        ["authorization", "Authorization"]
            .iter()
            .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
            .map(str::to_string)
    };
    find(payload).or_else(|| payload.get("headers").and_then(find))
}

/// Sends a close frame, giving up after a second (the client may not be reading).
async fn close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_string().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// Resolves once the server is shutting down.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::presented_authorization;

    #[test]
    fn the_token_is_found_where_clients_put_it() {
        for payload in [
            json!({ "authorization": "Bearer a" }),
            json!({ "Authorization": "Bearer a" }),
            json!({ "headers": { "Authorization": "Bearer a" } }),
        ] {
            assert_eq!(
                presented_authorization(&payload).as_deref(),
                Some("Bearer a")
            );
        }
        assert_eq!(presented_authorization(&json!({})), None);
        assert_eq!(
            presented_authorization(&json!({ "authorization": 7 })),
            None
        );
    }
}
