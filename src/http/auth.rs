//! Decoding the caller once per request: the `Authorization` header becomes `Credentials`,
//! the peer and user agent a `ClientInfo`, and a DataLoader is made for that viewer.

use std::net::SocketAddr;

use async_graphql::dataloader::DataLoader;
use axum::http::{HeaderMap, header};

use super::rights::Held;

use crate::app::App;
use crate::application::{api_keys, end_user_tokens};
use crate::auth::{Actor, ClientInfo, Credentials};
use crate::graphql::loaders::DbLoader;
use crate::graphql::viewer::Viewer;

/// The credentials an `Authorization` header presents: an access token (JWT) of a user, an
/// application's API key (`app-...`, looked up in the database), or an end-user token (a
/// JWT whose API key is checked in the database); with them, for a live connection to
/// follow, what the credential holds (its expiry, its session).
pub async fn credentials(app: &App, authorization: Option<&str>) -> (Credentials, Option<Held>) {
    let Some(value) = authorization else {
        return (Credentials::Anonymous, None);
    };
    let token = match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return (Credentials::Invalid, None),
    };
    let (found, expires_at) = if token.starts_with(api_keys::KEY_PREFIX) {
        let found = match app.pool.get().await {
            Ok(mut conn) => api_keys::authenticate(&mut conn, token).await,
            Err(e) => Err(e.into()),
        };
        (found, None)
    } else if let Some(claims) = app.auth.signer.verify(token) {
        let actor = Actor::User {
            user_id: claims.user_id,
        };
        let held = Held {
            actor,
            expires_at: Some(claims.exp),
            session_id: claims.session_id,
        };
        return (Credentials::Actor(actor), Some(held));
    } else if let Some(claims) = app.auth.signer.verify_end_user(token) {
        // Signed by us and not expired: its key must still stand.
        let found = match app.pool.get().await {
            Ok(mut conn) => end_user_tokens::authenticate(&mut conn, claims).await,
            Err(e) => Err(e.into()),
        };
        (found, Some(claims.exp))
    } else {
        return (Credentials::Invalid, None);
    };
    match found {
        Ok(Some(actor)) => {
            let held = Held {
                actor,
                expires_at,
                session_id: None,
            };
            (Credentials::Actor(actor), Some(held))
        }
        Ok(None) => (Credentials::Invalid, None),
        Err(e) => {
            tracing::error!(error = %e, "cannot check an API key");
            (Credentials::Invalid, None)
        }
    }
}

/// The client as seen from here: the TCP peer, or the address a trusted proxy forwarded
/// for (`WEFT_TRUSTED_PROXIES`), and the user agent.
pub fn client_info(app: &App, peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: Some(
            app.config
                .trusted_proxies
                .client_address(peer, headers)
                .to_string(),
        ),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// The batch loader of one request (or one WebSocket connection) for its caller: relations
/// are filtered by what the caller may see (`Viewer`).
pub fn loader_for(app: &App, credentials: Credentials) -> std::sync::Arc<DataLoader<DbLoader>> {
    let viewer = Viewer::of(&credentials);
    std::sync::Arc::new(
        DataLoader::new(DbLoader::new(app.pool.clone(), viewer), tokio::spawn)
            .delay(app.config.dataloader_delay),
    )
}

/// Adds the caller (as `presented`, or decoded from the headers), the client and a
/// per-request loader to a GraphQL request; returns it with what the credential holds, for
/// a live response to follow.
pub async fn request_data(
    app: &std::sync::Arc<App>,
    request: async_graphql::Request,
    peer: SocketAddr,
    headers: &HeaderMap,
    presented: Option<(Credentials, Option<Held>)>,
) -> (async_graphql::Request, Option<Held>) {
    let (credentials, held) = match presented {
        Some(presented) => presented,
        None => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            credentials(app, authorization).await
        }
    };
    let loader = loader_for(app, credentials);
    let request = request
        .data(credentials)
        .data(client_info(app, peer, headers))
        .data(loader);
    (request, held)
}
