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
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
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
}
