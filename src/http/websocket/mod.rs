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
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};

use super::auth::{client_info, credentials, loader_for};
use super::connections::Slot;
use super::rights::{Ended, Held, RightsWatch};
use super::{HttpState, RequestId};
use crate::app::App;
use crate::auth::Credentials;
use crate::graphql::subscription::SubscriptionBudget;
use crate::realtime::woken::Woken;
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
        .read_buffer_size(1024)
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
    Initialised(Result<Box<Accepted>, Refused>),
    /// A message from the client; `None` when its input ended.
    Client(Option<Result<Message, axum::Error>>),
    Outgoing(Outgoing),
}

/// Whether the connection goes on after a step.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    End,
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
        let mut stopping = super::shutdown(self.state.stop.clone());
        let init_timeout = self.state.app.config.realtime.init_timeout;
        let (sink, source) = socket.split();
        // The client's next message, also polled only when the socket woke it: the loop goes
        // round once per frame sent, and the client rarely says anything.
        let mut incoming = Woken::new(next_message(source));
        let mut live = Connection::new(self, sink);
        // graphql-ws's rule: no connection_init in time, 4408.
        let init_deadline = tokio::time::sleep(init_timeout);
        let mut init_deadline = std::pin::pin!(init_deadline);
        loop {
            let step = tokio::select! {
                biased;
                () = stopping.done() => Step::Stopping,
                () = &mut init_deadline, if !live.initialised => Step::InitTimedOut,
                ended = woken_or_pending(live.rights.as_mut()), if live.rights.is_some() => {
                    Step::RightsEnded(ended)
                }
                outcome = pending_or(live.init.as_mut()), if live.init.is_some() => {
                    Step::Initialised(outcome)
                }
                (message, source) = incoming.done(), if live.init.is_none() => {
                    incoming.set(next_message(source));
                    Step::Client(message)
                }
                outgoing = live.operations.next() => Step::Outgoing(outgoing),
            };
            if live.step(step).await == Flow::End {
                return;
            }
        }
    }
}

/// A connection once upgraded: its writing half, its operations, and what
/// `connection_init` granted.
struct Connection {
    session: Session,
    sink: Sink,
    operations: Operations,
    runner: Runner,
    /// `connection_init`, while it is being checked (the client's next messages wait).
    init: Option<BoxFuture<'static, Result<Box<Accepted>, Refused>>>,
    initialised: bool,
    /// The connection's data, once `connection_ack` was sent.
    data: Option<Arc<Data>>,
    _caller_slot: Option<Slot>,
    /// Told by an operation's check that the credential is gone.
    lost: Option<watch::Receiver<Option<Ended>>>,
    /// Resolves when the credential stops standing.
    rights: Option<Woken<Ended>>,
}

impl Connection {
    fn new(session: Session, sink: Sink) -> Connection {
        let app = session.state.app.clone();
        let (lost, lost_seen) = watch::channel(None);
        let runner = Runner {
            schema: session.state.schema.clone(),
            documents: session.state.documents.clone(),
            max_root_fields: app.config.api_limits.max_root_fields,
            app,
            request_id: RequestId::new(),
            held: None,
            lost: Arc::new(lost),
        };
        Connection {
            operations: Operations::new(session.protocol),
            session,
            sink,
            runner,
            init: None,
            initialised: false,
            data: None,
            _caller_slot: None,
            lost: Some(lost_seen),
            rights: None,
        }
    }

    /// (What only happens a few times in a connection's life is boxed: this future lives in
    /// the connection's task, whose size every connection keeps; a frame to send is not.)
    async fn step(&mut self, step: Step) -> Flow {
        match step {
            Step::Stopping => self.close(1001, "the server is shutting down").await,
            Step::InitTimedOut => self.close(4408, "Connection initialisation timeout").await,
            Step::RightsEnded(ended) => self.close(4403, ended.reason()).await,
            Step::Initialised(outcome) => Box::pin(self.initialised(outcome)).await,
            Step::Client(None | Some(Ok(Message::Close(_)))) => self.closed().await,
            Step::Client(Some(Err(e))) => {
                if e.to_string().contains("too long") {
                    self.close(1009, "frames are limited to 64 KiB").await;
                }
                Flow::End
            }
            Step::Client(Some(Ok(message))) => {
                let parsed = match &message {
                    Message::Text(text) => ClientMessage::from_bytes(text.as_bytes()),
                    Message::Binary(bytes) => ClientMessage::from_bytes(bytes),
                    _ => return Flow::Continue,
                };
                match parsed {
                    Ok(message) => Box::pin(self.client_message(message)).await,
                    Err(e) => {
                        let reason = format!("Invalid message received: {e}");
                        self.close(4400, &reason).await
                    }
                }
            }
            Step::Outgoing(Outgoing::Next {
                frame,
                published_at_us,
            }) => {
                let flow = self.send(frame).await;
                if flow == Flow::Continue && published_at_us > 0 {
                    self.runner.app.metrics.event_delivered(published_at_us);
                }
                flow
            }
            Step::Outgoing(Outgoing::Completed(id)) => self.send(protocol::complete(&id)).await,
        }
    }

    /// `connection_init` checked: `connection_ack`, or the refusal.
    async fn initialised(&mut self, outcome: Result<Box<Accepted>, Refused>) -> Flow {
        self.init = None;
        let accepted = match outcome {
            Ok(accepted) => accepted,
            Err(refused) => {
                let (code, reason) = refused.close();
                return self.refuse(code, reason).await;
            }
        };
        self.runner.held = accepted.held;
        self._caller_slot = accepted.slot;
        if let (Some(watch), Some(lost)) = (accepted.watch, self.lost.take()) {
            let app = self.runner.app.clone();
            self.rights = Some(Woken::new(rights_end(app, watch, lost)));
        }
        self.data = Some(Arc::new(accepted.data));
        self.send(protocol::CONNECTION_ACK.to_string()).await
    }

    async fn client_message(&mut self, message: ClientMessage) -> Flow {
        let protocol = self.session.protocol;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.initialised {
                    return self.refuse(4429, TOO_MANY_INITS).await;
                }
                self.initialised = true;
                self.init = Some(Box::pin(accept(
                    self.session.state.clone(),
                    payload.unwrap_or_default(),
                    self.session.authorization.clone(),
                    self.session.client.clone(),
                )));
                Flow::Continue
            }
            ClientMessage::Start { id, payload } => {
                let Some(data) = &self.data else {
                    return self.close(4401, "Unauthorized").await;
                };
                if protocol == WebSocketProtocols::GraphQLWS && self.operations.contains(&id) {
                    let reason = format!("Subscriber for {id} already exists");
                    return self.close(4409, &reason).await;
                }
                let answers = self.runner.answers(payload, data.clone());
                self.operations.start(id, answers);
                Flow::Continue
            }
            ClientMessage::Stop { id } => {
                if self.operations.stop(&id) {
                    return self.send(protocol::complete(&id)).await;
                }
                Flow::Continue
            }
            ClientMessage::ConnectionTerminate => self.closed().await,
            ClientMessage::Ping { .. } => self.send(protocol::PONG.to_string()).await,
            ClientMessage::Pong { .. } => Flow::Continue,
        }
    }

    /// Refuses `connection_init` (the legacy protocol hears why first) and closes.
    async fn refuse(&mut self, code: u16, reason: &str) -> Flow {
        if self.session.protocol == WebSocketProtocols::SubscriptionsTransportWS {
            let _ = self.send(protocol::connection_error(reason)).await;
        }
        self.close(code, reason).await
    }

    /// Writes a text frame; ends the connection when the socket failed or its client stopped
    /// reading for `WEFT_SEND_TIMEOUT_SECS` (the client resumes with `after`).
    async fn send(&mut self, text: String) -> Flow {
        let send_timeout = self.runner.app.config.realtime.send_timeout;
        match tokio::time::timeout(send_timeout, self.sink.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(_)) => Flow::End,
            Err(_) => {
                tracing::info!(
                    timeout = ?send_timeout,
                    "closing a WebSocket whose client stopped reading"
                );
                Flow::End
            }
        }
    }

    /// The client closed (or terminated): flush the close handshake's answer so it sees a
    /// clean close rather than a dropped connection.
    async fn closed(&mut self) -> Flow {
        let flushed = tokio::time::timeout(Duration::from_secs(1), self.sink.close());
        let _ = Box::pin(flushed).await;
        Flow::End
    }

    async fn close(&mut self, code: u16, reason: &str) -> Flow {
        Box::pin(close(&mut self.sink, code, reason)).await;
        Flow::End
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

/// The client's next message (`None` once its input ended), with the socket's reading half.
async fn next_message(
    mut source: SplitStream<WebSocket>,
) -> (Option<Result<Message, axum::Error>>, SplitStream<WebSocket>) {
    (source.next().await, source)
}

/// The output of `wait`; pending forever without one (a branch `select!` keeps disabled).
async fn woken_or_pending<T>(wait: Option<&mut Woken<T>>) -> T {
    match wait {
        Some(wait) => wait.done().await,
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
) -> Result<Box<Accepted>, Refused> {
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
    Ok(Box::new(Accepted {
        data,
        held,
        watch,
        slot,
    }))
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
