//! Clients of the live transports for tests: WebSocket (both sub-protocols) and SSE, and
//! rows to stream about.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::TestServer;
use super::accounts::{Account, Tenant, create_organization, register};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";
const WAIT: Duration = Duration::from_secs(15);

pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
}

/// What became of a socket.
#[derive(Debug, PartialEq)]
pub enum Closed {
    Code(u16),
    /// The connection ended without a close frame.
    Dropped,
}

impl Ws {
    /// Opens a socket with `protocol` (and extra headers), without `connection_init`.
    pub async fn open(
        server: &TestServer,
        protocol: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        Ws::open_url(&server.ws_url("/graphql"), protocol, headers).await
    }

    /// Opens a socket to `url` (`ws://…/graphql`), without `connection_init`.
    pub async fn open_url(
        url: &str,
        protocol: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name");
            request
                .headers_mut()
                .insert(name, HeaderValue::from_str(value).expect("header"));
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws {
            socket,
            legacy: protocol == LEGACY_WS,
        })
    }

    /// Opens a socket and completes `connection_init` with `token`.
    pub async fn connect(server: &TestServer, protocol: &str, token: Option<&str>) -> Ws {
        let mut ws = Ws::open(server, protocol, &[])
            .await
            .expect("the socket opens");
        ws.init(token).await;
        let ack = ws.next_json().await.expect("an answer to connection_init");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    pub async fn init(&mut self, token: Option<&str>) {
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(
        &mut self,
        message: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket.send(message).await
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next JSON message, skipping keep-alives; `None` when the socket closed.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message within the wait")?;
            match message {
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON");
                    if value["type"] == "ka" || value["type"] == "ping" || value["type"] == "pong" {
                        continue;
                    }
                    return Some(value);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The next message as it came, keep-alives included; `None` when the socket closed.
    pub async fn raw_next(&mut self) -> Option<Message> {
        let message = tokio::time::timeout(WAIT, self.socket.next())
            .await
            .expect("a message within the wait")?;
        message.ok()
    }

    /// The payloads of subscription `id` until it completes.
    pub async fn until_complete(&mut self, id: &str) -> Vec<Value> {
        let mut payloads = Vec::new();
        loop {
            let message = self.next_json().await.expect("the subscription completes");
            if message["id"] != id {
                continue;
            }
            match message["type"].as_str() {
                Some("next") | Some("data") => payloads.push(message["payload"].clone()),
                Some("complete") => return payloads,
                Some("error") => {
                    payloads.push(json!({ "errors": message["payload"] }));
                    return payloads;
                }
                other => panic!("unexpected {other:?}: {message}"),
            }
        }
    }

    /// The next `n` payloads of subscription `id`.
    pub async fn take(&mut self, id: &str, n: usize) -> Vec<Value> {
        let mut payloads = Vec::new();
        while payloads.len() < n {
            let message = self.next_json().await.expect("more events");
            if message["id"] == id
                && matches!(message["type"].as_str(), Some("next") | Some("data"))
            {
                payloads.push(message["payload"].clone());
            } else if message["id"] == id {
                panic!("subscription {id} ended early: {message}");
            }
        }
        payloads
    }

    /// Waits for the socket to close, returning the close code.
    pub async fn closed(&mut self) -> Closed {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the socket closes within the wait");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return Closed::Code(frame.code.into()),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Closed::Dropped,
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// Every `seq` of a list of `messageStream`/`executionEvents` payloads.
pub fn seqs(payloads: &[Value], field: &str) -> Vec<i64> {
    payloads
        .iter()
        .map(|p| {
            p["data"][field]["seq"]
                .as_i64()
                .unwrap_or_else(|| panic!("an event with a seq: {p}"))
        })
        .collect()
}

/// An SSE response read event by event.
pub struct Sse {
    pub response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn post(
        server: &TestServer,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Sse {
        let mut request = server
            .client
            .post(server.url("/graphql"))
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST");
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, data); comments (keep-alives) are returned as ("", comment).
    /// `None` at the end of the response.
    pub async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("event:") {
                        name = rest.trim().to_string();
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push(rest.trim_start().to_string());
                    } else if line.starts_with(':') {
                        return Some((String::new(), line.to_string()));
                    }
                }
                return Some((name, data.join("\n")));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("SSE data within the wait")
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The `next` payloads until `complete` (or the end of the response).
    pub async fn until_complete(&mut self) -> (Vec<Value>, bool) {
        let mut payloads = Vec::new();
        while let Some((name, data)) = self.next_event().await {
            match name.as_str() {
                "next" => payloads.push(serde_json::from_str(&data).expect("JSON")),
                "complete" => return (payloads, true),
                _ => {}
            }
        }
        (payloads, false)
    }
}

/// Things a stream can be about, in one workspace: an application with a conversation, an
/// assistant message being generated, a running execution, a document being indexed.
pub struct Subjects {
    pub application: Uuid,
    pub conversation: Uuid,
    pub message: Uuid,
    pub execution: Uuid,
    pub document: Uuid,
}

pub async fn subjects(server: &TestServer, workspace: Uuid) -> Subjects {
    use diesel_async::RunQueryDsl;
    let mut conn = server.app.pool.get().await.expect("a connection");
    let s = Subjects {
        application: Uuid::new_v4(),
        conversation: Uuid::new_v4(),
        message: Uuid::new_v4(),
        execution: Uuid::new_v4(),
        document: Uuid::new_v4(),
    };
    let workflow = Uuid::new_v4();
    let version = Uuid::new_v4();
    let dataset = Uuid::new_v4();
    let statements = [
        format!("INSERT INTO workflows (id, workspace_id, name) VALUES ('{workflow}', '{workspace}', 'Flow')"),
        format!(
            "INSERT INTO workflow_versions (id, workspace_id, workflow_id, sequence_number, graph)
             VALUES ('{version}', '{workspace}', '{workflow}', 1, '{{}}')"
        ),
        format!(
            "INSERT INTO applications (id, workspace_id, name, mode) VALUES ('{}', '{workspace}', 'Chat', 'CHAT')",
            s.application
        ),
        format!(
            "INSERT INTO execution_records (id, workspace_id, workflow_id, version_id, status, started_at, triggered_by_application_id)
             VALUES ('{}', '{workspace}', '{workflow}', '{version}', 'RUNNING', now(), '{}')",
            s.execution, s.application
        ),
        format!(
            "INSERT INTO conversations (id, workspace_id, application_id, title) VALUES ('{}', '{workspace}', '{}', 'Talk')",
            s.conversation, s.application
        ),
        format!(
            "INSERT INTO messages (id, workspace_id, conversation_id, application_id, execution_id, sequence_number, role, content, status)
             VALUES ('{}', '{workspace}', '{}', '{}', '{}', 2, 'ASSISTANT', '', 'STREAMING')",
            s.message, s.conversation, s.application, s.execution
        ),
        format!("INSERT INTO datasets (id, workspace_id, name) VALUES ('{dataset}', '{workspace}', 'Docs')"),
        format!(
            "INSERT INTO documents (id, workspace_id, dataset_id, name, indexing_status)
             VALUES ('{}', '{workspace}', '{dataset}', 'Guide', 'WAITING')",
            s.document
        ),
    ];
    for sql in statements {
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .await
            .expect(&sql);
    }
    s
}

/// An owner (`owner@example.com`) of an organization whose workspace holds `Subjects`.
pub async fn owner_with_subjects(server: &TestServer) -> (Account, Tenant, Subjects) {
    let owner = register(server, "owner@example.com").await;
    let tenant = create_organization(server, &owner, "Acme").await;
    let subjects = subjects(server, tenant.workspace_id).await;
    (owner, tenant, subjects)
}

/// Reads a row for the producer as the engine would hold it.
async fn row<T>(server: &TestServer, sql: String) -> T
where
    T: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    use diesel_async::RunQueryDsl;
    let mut conn = server.app.pool.get().await.expect("a connection");
    diesel::sql_query(sql)
        .get_result(&mut conn)
        .await
        .expect("the row")
}

pub async fn message_row(server: &TestServer, id: Uuid) -> weft::db::models::Message {
    row(server, format!("SELECT * FROM messages WHERE id = '{id}'")).await
}

pub async fn execution_row(server: &TestServer, id: Uuid) -> weft::db::models::ExecutionRecord {
    row(
        server,
        format!("SELECT * FROM execution_records WHERE id = '{id}'"),
    )
    .await
}

pub async fn document_row(server: &TestServer, id: Uuid) -> weft::db::models::Document {
    row(server, format!("SELECT * FROM documents WHERE id = '{id}'")).await
}

/// Publishes a DELTA `w<n> ` for each `n`, as the chat pipeline would.
pub async fn publish_deltas(
    server: &TestServer,
    message: Uuid,
    words: std::ops::RangeInclusive<i64>,
) {
    for n in words {
        server
            .app
            .realtime
            .publish_message_event(weft::realtime::events::MessageEvent::delta(
                message,
                format!("w{n} "),
            ))
            .await
            .expect("published");
    }
}

/// Marks the message COMPLETED with `answer` in PostgreSQL and publishes END; its `seq`.
pub async fn finish(server: &TestServer, message: Uuid, answer: &str) -> i64 {
    {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.expect("a connection");
        diesel::sql_query(format!(
            "UPDATE messages SET status = 'COMPLETED', answer = '{answer}', content = '{answer}' \
             WHERE id = '{message}'"
        ))
        .execute(&mut conn)
        .await
        .expect("update");
    }
    let row = message_row(server, message).await;
    server
        .app
        .realtime
        .publish_message_event(weft::realtime::events::MessageEvent::end(row))
        .await
        .expect("published")
}
/// Waits until `n` subscriptions are in place on the server (subscribed on the bus), so
/// what is published next reaches live-only feeds.
pub async fn subscribed(server: &TestServer, n: i64) {
    let deadline = std::time::Instant::now() + WAIT;
    while server
        .app
        .metrics
        .subscriptions_active
        .load(std::sync::atomic::Ordering::Relaxed)
        < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} subscriptions in place"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
