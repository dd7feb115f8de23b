//! What the benchmark clients share: GraphQL calls to a running server, a fresh builder
//! with an organization of its own, and an authenticated graphql-transport-ws socket.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws socket to the server at `base` and authenticates it with
/// `bearer` (a builder's token or an API key); returns once acknowledged.
pub async fn socket(base: &str, bearer: &str) -> Result<Socket, Error> {
    let url = format!("{base}/graphql").replacen("http", "ws", 1);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // Reads in small chunks, as the server does: a thousand sockets with the default
    // 128 KiB buffer each spend the client's time in cache misses.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {bearer}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => return Ok(socket),
            Some(Ok(_)) => continue,
            other => return Err(format!("no connection_ack: {other:?}").into()),
        }
    }
}

/// Now, in µs since the epoch (what the benchmarks' servers stamp their answers with).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The `p` quantile (0..=1) of `sorted` µs, in ms.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Serves `router` on a free local port with Nagle's algorithm off (as a production
/// server would: streamed pieces leave at once); `http://127.0.0.1:<port>{path}`.
pub async fn serve(router: axum::Router, path: &str) -> Result<String, Error> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{path}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

/// A server's GraphQL endpoint.
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    /// `WEFT_URL`, or the default address.
    pub fn from_env() -> Api {
        Api::at(&std::env::var("WEFT_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into()))
    }

    /// The server at `base` (`http://host:port`).
    pub fn at(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The `data` of an answer; its errors as an error.
    pub async fn call(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<Value, Error> {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer: Value = request.send().await?.json().await?;
        if answer.get("errors").is_some() {
            return Err(format!("{answer}").into());
        }
        Ok(answer["data"].clone())
    }

    /// Registers a new builder with an organization; its access token and workspace.
    pub async fn builder(&self, label: &str) -> Result<(String, Uuid), Error> {
        let email = format!("{label}-{}@example.com", Uuid::new_v4().simple());
        let registered = self
            .call(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                json!({ "i": { "email": email, "password": "a long bench password", "name": "Bench" } }),
                None,
            )
            .await?;
        let token = registered["register"]["accessToken"]
            .as_str()
            .ok_or("no token")?
            .to_string();
        let org = self
            .call(
                "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { teams { workspaces { id } } } }",
                json!({ "i": { "name": "Bench" } }),
                Some(&token),
            )
            .await?;
        let workspace: Uuid = org["createOrganization"]["teams"][0]["workspaces"][0]["id"]
            .as_str()
            .ok_or("no workspace")?
            .parse()?;
        Ok((token, workspace))
    }

    /// A new builder's published chat application (START → LLM on an OpenAI-compatible
    /// server at `model_url` → ANSWER of the LLM's text) with an API key.
    pub async fn chat_application(
        &self,
        label: &str,
        model_url: &str,
    ) -> Result<ChatApplication, Error> {
        let (token, workspace) = self.builder(label).await?;
        let t = Some(token.as_str());
        let provider = self
            .call(
                "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
                json!({ "i": { "workspaceId": workspace, "name": "Local", "providerType": "OPENAI_COMPATIBLE",
                               "baseUrl": model_url, "models": ["bench"], "defaultModel": "bench" } }),
                t,
            )
            .await?["createLlmProvider"]["id"]
            .clone();
        let graph = json!({
            "nodes": [
                { "key": "start", "type": "START", "config": {} },
                { "key": "llm", "type": "LLM", "config": { "providerId": provider, "prompt": "{{sys.query}}" } },
                { "key": "answer", "type": "ANSWER", "config": { "answer": "{{llm.text}}" } }
            ],
            "connections": [
                { "source": "start", "target": "llm" },
                { "source": "llm", "target": "answer" }
            ]
        });
        let workflow = self
            .call(
                "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                json!({ "i": { "workspaceId": workspace, "name": "Bench", "graph": graph } }),
                t,
            )
            .await?["createWorkflow"]["id"]
            .clone();
        let application = self
            .call(
                "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }",
                json!({ "i": { "workspaceId": workspace, "name": "Bench", "mode": "CHAT", "workflowId": workflow } }),
                t,
            )
            .await?["createApplication"]["id"]
            .as_str()
            .ok_or("no application")?
            .to_string();
        self.call(
            "mutation($id: UUID!) { publishApplication(id: $id) { status } }",
            json!({ "id": application }),
            t,
        )
        .await?;
        let key = self
            .call(
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "applicationId": application, "name": "bench" } }),
                t,
            )
            .await?["createApiKey"]["secret"]
            .as_str()
            .ok_or("no key")?
            .to_string();
        Ok(ChatApplication {
            token,
            workspace,
            application,
            key,
        })
    }
}

/// What `Api::chat_application` made.
pub struct ChatApplication {
    /// The builder's access token.
    pub token: String,
    pub workspace: Uuid,
    pub application: String,
    /// The application's API key.
    pub key: String,
}

/// User + system CPU seconds process `pid` ("self" for this one) has used.
pub fn cpu_seconds(pid: &str) -> Result<f64, Error> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(ticks_of(&stat) / 100.0)
}

/// User + system CPU seconds used by the processes whose command is `command`
/// (`postgres`, `redis-server`), the ones that exited excepted.
pub fn cpu_seconds_of(command: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .is_some_and(|(name, _)| name == command)
        })
        .map(|stat| ticks_of(&stat) / 100.0)
        .sum()
}

/// utime + stime of a `/proc/<pid>/stat` line, in clock ticks.
fn ticks_of(stat: &str) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let field = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    field(14) + field(15)
}
