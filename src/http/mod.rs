//! The HTTP surface: the router and one small module per endpoint group.

mod auth;
mod browser;
pub mod config;
mod connections;
mod files;
mod graphiql;
mod graphql;
mod health;
pub mod listener;
pub mod origins;
pub mod proxies;
mod request_id;
mod rights;
mod sse;
mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::sync::{mpsc, watch};

use crate::app::App;
use crate::graphql::WeftSchema;
use crate::graphql::documents::DocumentCache;
use crate::realtime::woken::Woken;

pub use connections::LiveConnections;
pub use request_id::RequestId;

/// What every handler is given.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<App>,
    pub schema: WeftSchema,
    pub documents: Arc<DocumentCache>,
    /// Turns true when the server is shutting down: live streams end.
    pub stop: watch::Receiver<bool>,
    /// Turns true when shutdown begins, `WEFT_SHUTDOWN_DELAY_SECS` before `stop`: `/readyz`
    /// answers 503.
    pub draining: watch::Receiver<bool>,
    /// Held by every open WebSocket, so shutdown can wait for them to close.
    pub sessions: Sessions,
    /// Live connections per client address and per caller.
    pub live: Arc<LiveConnections>,
}

/// Resolves once the server is shutting down; polled only when that signal wakes it (`Woken`),
/// since a live connection's loop goes round once per frame it sends.
pub(crate) fn shutdown(mut stop: watch::Receiver<bool>) -> Woken<()> {
    Woken::new(async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    })
}

/// A count of open WebSockets: each holds a clone; `wait` returns when none is left.
#[derive(Clone)]
pub struct Sessions {
    _open: mpsc::Sender<()>,
}

impl Sessions {
    pub fn new() -> (Sessions, mpsc::Receiver<()>) {
        let (sender, receiver) = mpsc::channel(1);
        (Sessions { _open: sender }, receiver)
    }
}

/// The media type of a `Content-Type` value, lower case, without parameters
/// (`application/json; charset=utf-8` → `application/json`).
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Every route of API.md's endpoint table, with CORS and compression around them.
pub fn router(state: HttpState) -> Router {
    let cors = browser::cors(&state.app.config.allowed_origins);
    Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/files/{id}", get(files::download))
        .route("/graphiql", get(graphiql::page))
        .route("/graphiql/", get(graphiql::page))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/", get(graphiql::redirect))
        .route("/schema.graphql", get(graphiql::schema_sdl))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(browser::compression())
        .layer(cors)
        .layer(axum::middleware::from_fn(browser::preflight_no_content))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}
