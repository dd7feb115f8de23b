//! Decoding the caller once per request: the `Authorization` header becomes `Credentials`,
//! the peer and user agent a `ClientInfo`, and a DataLoader is made for that viewer.

use std::net::SocketAddr;

use async_graphql::dataloader::DataLoader;
use axum::http::{HeaderMap, header};

use crate::app::App;
use crate::application::api_keys;
use crate::auth::{Actor, ClientInfo, Credentials};
use crate::graphql::loaders::DbLoader;

/// The credentials an `Authorization` header presents: an access token (JWT) of a user, or
/// an application's API key (`app-...`), looked up in the database.
pub async fn credentials(app: &App, authorization: Option<&str>) -> Credentials {
    let Some(value) = authorization else {
        return Credentials::Anonymous;
    };
    let token = match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Credentials::Invalid,
    };
    if token.starts_with(api_keys::KEY_PREFIX) {
        let found = match app.pool.get().await {
            Ok(mut conn) => api_keys::authenticate(&mut conn, token).await,
            Err(e) => Err(e.into()),
        };
        return match found {
            Ok(Some(actor)) => Credentials::Actor(actor),
            Ok(None) => Credentials::Invalid,
            Err(e) => {
                tracing::error!(error = %e, "cannot check an API key");
                Credentials::Invalid
            }
        };
    }
    match app.auth.signer.verify(token) {
        Some(user_id) => Credentials::Actor(Actor::User { user_id }),
        None => Credentials::Invalid,
    }
}

/// The client as seen from here: the TCP peer (proxies' forwarding headers are not trusted)
/// and the user agent.
pub fn client_info(peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// The batch loader of one request (or one WebSocket connection) for its caller: relations
/// are filtered by the workspaces of a user; other callers get none through it.
pub fn loader_for(app: &App, credentials: Credentials) -> std::sync::Arc<DataLoader<DbLoader>> {
    let viewer = match credentials {
        Credentials::Actor(Actor::User { user_id }) => Some(user_id),
        _ => None,
    };
    std::sync::Arc::new(
        DataLoader::new(DbLoader::new(app.pool.clone(), viewer), tokio::spawn)
            .delay(app.config.dataloader_delay),
    )
}

/// Adds the caller, the client and a per-request loader to a GraphQL request.
pub async fn request_data(
    app: &std::sync::Arc<App>,
    request: async_graphql::Request,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> async_graphql::Request {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credentials = credentials(app, authorization).await;
    let loader = loader_for(app, credentials);
    request
        .data(credentials)
        .data(client_info(peer, headers))
        .data(loader)
}
