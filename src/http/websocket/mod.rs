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
//!
//! The protocol loop is this server's own (`protocol`) rather than async-graphql's, so that
//! an answer shared by every subscriber asking the same way (`graphql::shared`) goes into
//! each frame as it is, serialized once. It closes as graphql-ws says: 4400 for a message
//! that is not one, 4401 for an operation before `connection_ack`, 4409 for an id already
//! running (`graphql-transport-ws`), 4429 for a second `connection_init`.

mod executor;
mod protocol;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ClientMessage, WebSocketProtocols};
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};

use super::auth::{client_info, credentials, loader_for};
use super::connections::Slot;
use super::rights::{Ended, Held, RightsWatch};
use super::{HttpState, RequestId};
use crate::app::App;
use crate::auth::Credentials;
use crate::graphql::subscription::SubscriptionBudget;
use executor::Runner;
use protocol::{Operations, Outgoing};

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

/// What `connection_init` granted.
struct Accepted {
    /// The connection's data: the caller, its loader, its subscription budget.
    data: Data,
    held: Option<Held>,
    /// The watch on the rights it presented.
    watch: Option<RightsWatch>,
    /// Its place among the caller's live connections.
    slot: Option<Slot>,
}

/// Why `connection_init` was refused.
enum Refused {
    /// Its credential is not valid (4403).
    Forbidden,
    /// The caller holds too many live connections (4429).
    Crowded,
}

impl Refused {
    fn close(&self) -> (u16, &'static str) {
        match self {
            Refused::Forbidden => (4403, "Forbidden"),
            Refused::Crowded => (
                4429,
                "too many live connections (WEFT_MAX_CONNECTIONS_PER_USER)",
            ),
        }
    }
}

/// One step of a connection's life.
enum Step {
    Stopping,
    InitTimedOut,
    RightsEnded(Ended),
    Initialised(Result<Accepted, Refused>),
    /// A message from the client; `None` when its input ended.
    Client(Option<Result<Message, axum::Error>>),
    Outgoing(Outgoing),
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
        let protocol = self.protocol;
        let (mut sink, mut source) = socket.split();
        let (lost, lost_seen) = watch::channel(None);
        let mut runner = Runner {
            schema: self.state.schema.clone(),
            app: app.clone(),
            request_id: RequestId::new(),
            max_root_fields: app.config.api_limits.max_root_fields,
            held: None,
            lost: Arc::new(lost),
        };
        let mut operations = Operations::new(protocol);
        // `connection_init` being checked, then what it granted.
        let mut init: Option<BoxFuture<'static, Result<Accepted, Refused>>> = None;
        let mut initialised = false;
        let mut connection: Option<Arc<Data>> = None;
        let mut _caller_slot: Option<Slot> = None;
        let mut lost_seen = Some(lost_seen);
        let mut rights: Option<BoxFuture<'static, Ended>> = None;
        // graphql-ws's rule: no connection_init in time, 4408.
        let init_deadline = tokio::time::sleep(app.config.realtime.init_timeout);
        let mut init_deadline = std::pin::pin!(init_deadline);
        loop {
            let step = tokio::select! {
                biased;
                () = stopped(&mut stop) => Step::Stopping,
                () = &mut init_deadline, if !initialised => Step::InitTimedOut,
                ended = pending_or(rights.as_mut()), if rights.is_some() => Step::RightsEnded(ended),
                outcome = pending_or(init.as_mut()), if init.is_some() => Step::Initialised(outcome),
                message = source.next(), if init.is_none() => Step::Client(message),
                outgoing = operations.next() => Step::Outgoing(outgoing),
            };
            match step {
                Step::Stopping => {
                    close(&mut sink, 1001, "the server is shutting down").await;
                    return;
                }
                Step::InitTimedOut => {
                    close(&mut sink, 4408, "Connection initialisation timeout").await;
                    return;
                }
                Step::RightsEnded(ended) => {
                    close(&mut sink, 4403, ended.reason()).await;
                    return;
                }
                Step::Initialised(outcome) => {
                    init = None;
                    let accepted = match outcome {
                        Ok(accepted) => accepted,
                        Err(refused) => {
                            let (code, reason) = refused.close();
                            if protocol == WebSocketProtocols::SubscriptionsTransportWS {
                                let error = protocol::connection_error(reason);
                                let _ = self.send(&mut sink, error).await;
                            }
                            close(&mut sink, code, reason).await;
                            return;
                        }
                    };
                    runner.held = accepted.held;
                    _caller_slot = accepted.slot;
                    if let (Some(watch), Some(lost_seen)) = (accepted.watch, lost_seen.take()) {
                        rights = Some(Box::pin(rights_end(app.clone(), watch, lost_seen)));
                    }
                    connection = Some(Arc::new(accepted.data));
                    if !self
                        .send(&mut sink, protocol::CONNECTION_ACK.to_string())
                        .await
                    {
                        return;
                    }
                }
                Step::Client(None | Some(Ok(Message::Close(_)))) => {
                    // The client closed (or terminated): flush the close handshake's answer
                    // so it sees a clean close rather than a dropped connection.
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                    return;
                }
                Step::Client(Some(Err(e))) => {
                    if e.to_string().contains("too long") {
                        close(&mut sink, 1009, "frames are limited to 64 KiB").await;
                    }
                    return;
                }
                Step::Client(Some(Ok(message))) => {
                    let parsed = match &message {
                        Message::Text(text) => ClientMessage::from_bytes(text.as_bytes()),
                        Message::Binary(bytes) => ClientMessage::from_bytes(bytes),
                        _ => continue,
                    };
                    let message = match parsed {
                        Ok(message) => message,
                        Err(e) => {
                            close(&mut sink, 4400, &format!("Invalid message received: {e}")).await;
                            return;
                        }
                    };
                    match message {
                        ClientMessage::ConnectionInit { payload } => {
                            if initialised {
                                if protocol == WebSocketProtocols::SubscriptionsTransportWS {
                                    let error = protocol::connection_error(TOO_MANY_INITS);
                                    let _ = self.send(&mut sink, error).await;
                                }
                                close(&mut sink, 4429, TOO_MANY_INITS).await;
                                return;
                            }
                            initialised = true;
                            init = Some(Box::pin(accept(
                                self.state.clone(),
                                payload.unwrap_or_default(),
                                self.authorization.clone(),
                                self.client.clone(),
                            )));
                        }
                        ClientMessage::Start { id, payload } => {
                            let Some(connection) = &connection else {
                                close(&mut sink, 4401, "Unauthorized").await;
                                return;
                            };
                            if protocol == WebSocketProtocols::GraphQLWS && operations.contains(&id)
                            {
                                close(
                                    &mut sink,
                                    4409,
                                    &format!("Subscriber for {id} already exists"),
                                )
                                .await;
                                return;
                            }
                            operations.start(id, runner.answers(payload, connection.clone()));
                        }
                        ClientMessage::Stop { id } => {
                            if operations.stop(&id)
                                && !self.send(&mut sink, protocol::complete(&id)).await
                            {
                                return;
                            }
                        }
                        ClientMessage::ConnectionTerminate => {
                            let _ =
                                tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
                            return;
                        }
                        ClientMessage::Ping { .. } => {
                            if !self.send(&mut sink, protocol::PONG.to_string()).await {
                                return;
                            }
                        }
                        ClientMessage::Pong { .. } => {}
                    }
                }
                Step::Outgoing(Outgoing::Next {
                    frame,
                    published_at_us,
                }) => {
                    if !self.send(&mut sink, frame).await {
                        return;
                    }
                    if published_at_us > 0 {
                        app.metrics.event_delivered(published_at_us);
                    }
                }
                Step::Outgoing(Outgoing::Completed(id)) => {
                    if !self.send(&mut sink, protocol::complete(&id)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Writes a text frame; `false` when the socket failed or its client stopped reading
    /// for `WEFT_SEND_TIMEOUT_SECS` (the connection then ends; the client resumes with
    /// `after`).
    async fn send(&self, sink: &mut Sink, text: String) -> bool {
        let send_timeout = self.state.app.config.realtime.send_timeout;
        match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::info!(
                    timeout = ?send_timeout,
                    "closing a WebSocket whose client stopped reading"
                );
                false
            }
        }
    }
}

const TOO_MANY_INITS: &str = "Too many initialisation requests";

/// The output of `future`; pending forever without one (a branch `select!` keeps disabled).
async fn pending_or<T>(future: Option<&mut BoxFuture<'static, T>>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// Checks `connection_init`: the credential it presents (or the upgrade request's), the
/// watch on its rights, the caller's place among its live connections.
async fn accept(
    state: HttpState,
    payload: serde_json::Value,
    fallback: Option<String>,
    client: crate::auth::ClientInfo,
) -> Result<Accepted, Refused> {
    let app = &state.app;
    let presented = presented_authorization(&payload).or(fallback);
    let (credentials, held) = credentials(app, presented.as_deref()).await;
    // The announcements that may end these rights, followed from a check made after
    // subscribing (a builder's access token outlives its session).
    let watch = match held {
        Some(held) => Some(RightsWatch::open(app, held).await),
        None => None,
    };
    if credentials == Credentials::Invalid || matches!(watch, Some(Err(_))) {
        return Err(Refused::Forbidden);
    }
    let watch = watch.and_then(Result::ok);
    let slot = match held {
        Some(held) => {
            let max = app.config.http.max_connections_per_user;
            Some(
                state
                    .live
                    .for_caller(held.actor, max)
                    .ok_or(Refused::Crowded)?,
            )
        }
        None => None,
    };
    let loader = loader_for(app, credentials);
    let budget = app.config.realtime.max_subscriptions_per_connection;
    let mut data = Data::default();
    data.insert(credentials);
    data.insert(client);
    data.insert(loader);
    data.insert(SubscriptionBudget(Arc::new(Semaphore::new(budget))));
    Ok(Accepted {
        data,
        held,
        watch,
        slot,
    })
}

/// Resolves when the connection's rights end: its watch says so, or an operation's check
/// found its credential gone.
async fn rights_end(
    app: Arc<App>,
    watch: RightsWatch,
    mut lost: watch::Receiver<Option<Ended>>,
) -> Ended {
    let withdrawn = async {
        match lost.wait_for(Option::is_some).await.map(|e| *e) {
            Ok(ended) => ended.unwrap_or(Ended::Revoked),
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        ended = watch.ended(&app) => ended,
        ended = withdrawn => ended,
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

/// Sends a close frame, giving up after a second (the client may not be reading). The
/// reason is cut to the 123 bytes a close frame holds.
async fn close(sink: &mut Sink, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].to_string().into(),
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
