//! A client of the Model Context Protocol over Streamable HTTP (specification 2025-06-18):
//! JSON-RPC requests POSTed to the server's one URL, answered with a JSON body or an SSE
//! stream that carries the response (notifications and server requests on it are passed
//! over); `initialize` then `notifications/initialized` open a session, its `Mcp-Session-Id`
//! and the negotiated `MCP-Protocol-Version` go with every later request, and a 404 on a
//! session means it expired: a new one is opened and the request sent once more.
//!
//! Every request goes through the outbound guard's client (resolution checked, no
//! redirects, no proxy) and `check_url`. Sessions are kept per server (and per version of
//! its settings) and reused; tool lists are cached for `TOOLS_TTL`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::llm::sse::SseReader;
use crate::outbound::{OutboundConfig, Refused};

/// The protocol version asked for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// How long a server's tool list is reused.
const TOOLS_TTL: Duration = Duration::from_secs(30);
/// The largest JSON answer read.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The most pages of tools read.
const MAX_PAGES: usize = 20;

/// Where and how to reach one server.
pub struct Endpoint {
    pub server_id: Uuid,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The server row's `updated_at`: a change of settings starts a new session.
    pub stamp: DateTime<Utc>,
}

/// A tool a server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
}

/// What a `tools/call` gave.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// `structuredContent` when the server gave it, else `{ "content": [...] }`.
    pub result: Value,
    /// The text parts of `content`, joined by newlines.
    pub text: String,
    /// The tool reported a failure (`isError`).
    pub is_error: bool,
}

/// Why a request to a server failed; the message names the host, never a header.
#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Refused(String),
    #[error("the MCP server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the MCP server answered HTTP {0}{1}")]
    Status(u16, String),
    #[error("the MCP server answered an error: {1} (code {0})")]
    Rpc(i64, String),
    #[error("the MCP server's answer is not valid: {0}")]
    Invalid(String),
    #[error("the MCP server did not answer within {0} s")]
    Timeout(u64),
    #[error("the MCP server's session expired")]
    SessionExpired,
}

/// A server's tools as listed, when, and for which version of its settings.
type ListedTools = (Instant, DateTime<Utc>, Vec<McpTool>);

#[derive(Clone)]
struct Session {
    stamp: DateTime<Utc>,
    id: Option<String>,
    protocol: String,
}

/// The MCP client of this process: sessions and tool lists per server.
pub struct McpClients {
    http: reqwest::Client,
    outbound: OutboundConfig,
    next_id: AtomicU64,
    sessions: Mutex<HashMap<Uuid, Session>>,
    tools: Mutex<HashMap<Uuid, ListedTools>>,
}

impl McpClients {
    pub fn new(outbound: &OutboundConfig) -> McpClients {
        McpClients {
            http: outbound.client(Duration::from_secs(10)),
            outbound: outbound.clone(),
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
            tools: Mutex::new(HashMap::new()),
        }
    }

    /// The server's tools (`tools/list`, every page), from the cache when fresh.
    pub async fn list_tools(
        &self,
        endpoint: &Endpoint,
        patience: Duration,
    ) -> Result<Vec<McpTool>, McpError> {
        if let Some((at, stamp, tools)) = self.tools.lock().await.get(&endpoint.server_id)
            && at.elapsed() < TOOLS_TTL
            && *stamp == endpoint.stamp
        {
            return Ok(tools.clone());
        }
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let page = self
                .request(endpoint, "tools/list", params, patience)
                .await?;
            let listed = page
                .get("tools")
                .and_then(Value::as_array)
                .ok_or_else(|| McpError::Invalid("tools/list gave no tools".into()))?;
            for tool in listed {
                let name = tool
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| McpError::Invalid("a tool has no name".into()))?;
                tools.push(McpTool {
                    name: name.to_string(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    input_schema: tool
                        .get("inputSchema")
                        .cloned()
                        .unwrap_or_else(|| json!({ "type": "object" })),
                });
            }
            cursor = page
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        self.tools.lock().await.insert(
            endpoint.server_id,
            (Instant::now(), endpoint.stamp, tools.clone()),
        );
        Ok(tools)
    }

    /// Calls tool `name` with `arguments` (`tools/call`).
    pub async fn call_tool(
        &self,
        endpoint: &Endpoint,
        name: &str,
        arguments: Value,
        patience: Duration,
    ) -> Result<CallResult, McpError> {
        let answer = self
            .request(
                endpoint,
                "tools/call",
                json!({ "name": name, "arguments": arguments }),
                patience,
            )
            .await?;
        let content = answer
            .get("content")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let text = content
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        let result = match answer.get("structuredContent") {
            Some(structured) if !structured.is_null() => structured.clone(),
            _ => json!({ "content": content }),
        };
        Ok(CallResult {
            result,
            text,
            is_error: answer.get("isError").and_then(Value::as_bool) == Some(true),
        })
    }

    /// One request in the server's session (opened when there is none, once more when it
    /// expired), bounded by `patience` as a whole.
    async fn request(
        &self,
        endpoint: &Endpoint,
        method: &str,
        params: Value,
        patience: Duration,
    ) -> Result<Value, McpError> {
        let attempt = async {
            let session = self.session(endpoint).await?;
            match self.post(endpoint, Some(&session), method, &params).await {
                Err(McpError::SessionExpired) => {
                    self.sessions.lock().await.remove(&endpoint.server_id);
                    let session = self.session(endpoint).await?;
                    self.post(endpoint, Some(&session), method, &params).await
                }
                other => other,
            }
        };
        tokio::time::timeout(patience, attempt)
            .await
            .unwrap_or(Err(McpError::Timeout(patience.as_secs().max(1))))
            .map(|answer| answer.unwrap_or(Value::Null))
    }

    /// The open session with the server, or a new one.
    async fn session(&self, endpoint: &Endpoint) -> Result<Session, McpError> {
        if let Some(session) = self.sessions.lock().await.get(&endpoint.server_id)
            && session.stamp == endpoint.stamp
        {
            return Ok(session.clone());
        }
        let (answer, session_id) = self
            .exchange(
                endpoint,
                None,
                Some(self.next_id.fetch_add(1, Ordering::Relaxed)),
                "initialize",
                &json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": { "name": "weft", "version": env!("CARGO_PKG_VERSION") },
                }),
            )
            .await?;
        let answer = answer.unwrap_or(Value::Null);
        let protocol = answer
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| McpError::Invalid("initialize gave no protocolVersion".into()))?
            .to_string();
        if answer.pointer("/capabilities/tools").is_none() {
            return Err(McpError::Invalid("the server offers no tools".into()));
        }
        let session = Session {
            stamp: endpoint.stamp,
            id: session_id,
            protocol,
        };
        self.exchange(
            endpoint,
            Some(&session),
            None,
            "notifications/initialized",
            &json!({}),
        )
        .await?;
        self.sessions
            .lock()
            .await
            .insert(endpoint.server_id, session.clone());
        Ok(session)
    }

    async fn post(
        &self,
        endpoint: &Endpoint,
        session: Option<&Session>,
        method: &str,
        params: &Value,
    ) -> Result<Option<Value>, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.exchange(endpoint, session, Some(id), method, params)
            .await
            .map(|(answer, _)| answer)
    }

    /// POSTs one message (a request when `id` is given, else a notification); the
    /// request's result and the session id the server gave.
    async fn exchange(
        &self,
        endpoint: &Endpoint,
        session: Option<&Session>,
        id: Option<u64>,
        method: &str,
        params: &Value,
    ) -> Result<(Option<Value>, Option<String>), McpError> {
        let url = reqwest::Url::parse(&endpoint.url)
            .map_err(|_| McpError::Invalid("the server's url does not parse".into()))?;
        self.outbound
            .check_url(&url)
            .map_err(|Refused(why)| McpError::Refused(why))?;
        let host = url.host_str().unwrap_or("").to_string();
        let mut message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        if let Some(id) = id {
            message["id"] = json!(id);
        }
        let request = outgoing(&self.http, &url, &endpoint.headers, session);
        // A request given up (a stop, a deadline) is cancelled at the server, as the
        // specification asks (a dropped connection does not cancel): the server can stop
        // the work. Not `initialize`, which may not be cancelled.
        let mut unanswered = match (id, session) {
            (Some(id), Some(session)) => Some(Unanswered {
                http: self.http.clone(),
                url: url.clone(),
                headers: endpoint.headers.clone(),
                session: session.clone(),
                id,
                answered: false,
            }),
            _ => None,
        };
        let answered = self
            .answer(request, message, id, method, session, host)
            .await;
        if let Some(pending) = unanswered.as_mut() {
            pending.answered = true;
        }
        answered
    }

    /// Sends a prepared message and reads its answer.
    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        message: Value,
        id: Option<u64>,
        method: &str,
        session: Option<&Session>,
        host: String,
    ) -> Result<(Option<Value>, Option<String>), McpError> {
        let mut response = request
            .body(message.to_string())
            .send()
            .await
            .map_err(|e| match Refused::within(&e) {
                Some(Refused(why)) => McpError::Refused(why),
                None => McpError::Unreachable(format!("{host}: {}", kind_of(&e))),
            })?;
        let status = response.status();
        let session_id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status == reqwest::StatusCode::NOT_FOUND && session.is_some_and(|s| s.id.is_some()) {
            return Err(McpError::SessionExpired);
        }
        if !status.is_success() {
            let body = read_limited(&mut response, 2048).await.unwrap_or_default();
            let detail = error_detail(&body);
            return Err(McpError::Status(status.as_u16(), detail));
        }
        let Some(id) = id else {
            return Ok((None, session_id));
        };
        if status == reqwest::StatusCode::ACCEPTED {
            return Err(McpError::Invalid(format!(
                "{method} was accepted without an answer"
            )));
        }
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let answer = if is_stream {
            answer_in_stream(&mut response, id).await?
        } else {
            let body = read_limited(&mut response, MAX_BODY).await?;
            let message: Value = serde_json::from_slice(&body)
                .map_err(|e| McpError::Invalid(format!("the body is not JSON ({e})")))?;
            let found = match message {
                Value::Array(batch) => batch.into_iter().find(|m| answers(m, id)),
                single => Some(single).filter(|m| answers(m, id)),
            };
            found.ok_or_else(|| McpError::Invalid("the body does not answer the request".into()))?
        };
        result_of(answer).map(|r| (Some(r), session_id))
    }
}

/// A POST of one message to the server, with its headers and session.
fn outgoing(
    http: &reqwest::Client,
    url: &reqwest::Url,
    headers: &[(String, String)],
    session: Option<&Session>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::ACCEPT,
            "application/json, text/event-stream",
        );
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(session) = session {
        request = request.header("MCP-Protocol-Version", session.protocol.as_str());
        if let Some(session_id) = &session.id {
            request = request.header("Mcp-Session-Id", session_id.as_str());
        }
    }
    request
}

/// A request in flight: dropped before its answer (the caller gave up), it sends
/// `notifications/cancelled` for it.
struct Unanswered {
    http: reqwest::Client,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    session: Session,
    id: u64,
    /// The answer came (or the request failed): nothing to cancel.
    answered: bool,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = outgoing(&self.http, &self.url, &self.headers, Some(&self.session)).body(
            json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": { "requestId": self.id, "reason": "the caller no longer waits" },
            })
            .to_string(),
        );
        runtime.spawn(async move {
            let sent = tokio::time::timeout(Duration::from_secs(5), request.send()).await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::debug!("an MCP server was not told of a cancelled request");
            }
        });
    }
}

fn kind_of(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused or failed"
    } else {
        "the request failed"
    }
}

/// Whether a JSON-RPC message is the response to request `id`.
fn answers(message: &Value, id: u64) -> bool {
    message.get("id").and_then(Value::as_u64) == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

fn result_of(response: Value) -> Result<Value, McpError> {
    if let Some(error) = response.get("error") {
        return Err(McpError::Rpc(
            error.get("code").and_then(Value::as_i64).unwrap_or(0),
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(500)
                .collect(),
        ));
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}

/// The message of a JSON-RPC error body, or nothing (an error page is not passed on).
fn error_detail(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
        })
        .unwrap_or_default()
}

async fn read_limited(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, McpError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| McpError::Unreachable(kind_of(&e).into()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(McpError::Invalid(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
    }
    Ok(body)
}

/// Reads an SSE stream until the response to `id` arrives.
async fn answer_in_stream(response: &mut reqwest::Response, id: u64) -> Result<Value, McpError> {
    let mut reader = SseReader::default();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| McpError::Unreachable(kind_of(&e).into()))?;
        let ended = chunk.is_none();
        let events = match chunk {
            Some(bytes) => reader
                .feed(&bytes)
                .map_err(|_| McpError::Invalid("an event is larger than 1 MiB".into()))?,
            None => reader.finish().into_iter().collect(),
        };
        for data in events {
            let Ok(message) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if answers(&message, id) {
                return Ok(message);
            }
        }
        if ended {
            return Err(McpError::Invalid(
                "the stream ended without an answer".into(),
            ));
        }
    }
}
