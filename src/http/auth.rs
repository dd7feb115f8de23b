//! Decoding the caller once per request: the `Authorization` header becomes `Credentials`,
//! the peer and user agent a `ClientInfo`, and a DataLoader is made for that viewer.

use std::net::SocketAddr;

use async_graphql::dataloader::DataLoader;
use axum::http::{HeaderMap, header};

use crate::app::App;
use crate::application::{api_keys, end_user_tokens};
use crate::auth::{Actor, ClientInfo, Credentials};
use crate::graphql::loaders::DbLoader;
use crate::graphql::viewer::Viewer;

/// The credentials an `Authorization` header presents: an access token (JWT) of a user, an
/// application's API key (`app-...`, looked up in the database), or an end-user token (a
/// JWT whose API key is checked in the database).
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
    if let Some(user_id) = app.auth.signer.verify(token) {
        return Credentials::Actor(Actor::User { user_id });
    }
    let Some(claims) = app.auth.signer.verify_end_user(token) else {
        return Credentials::Invalid;
    };
    // Signed by us and not expired: its key must still stand.
    let found = match app.pool.get().await {
        Ok(mut conn) => end_user_tokens::authenticate(&mut conn, claims).await,
        Err(e) => Err(e.into()),
    };
    match found {
        Ok(Some(actor)) => Credentials::Actor(actor),
        Ok(None) => Credentials::Invalid,
        Err(e) => {
            tracing::error!(error = %e, "cannot check an end-user token");
            Credentials::Invalid
        }
    }
}

/// When the end-user token an `Authorization` value presents expires (seconds since the
/// epoch); `None` for any other credential.
pub fn end_user_token_expiry(app: &App, authorization: Option<&str>) -> Option<i64> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    app.auth
        .signer
        .verify_end_user(token.trim())
        .map(|claims| claims.exp)
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

/// Adds the caller, the client and a per-request loader to a GraphQL request; returns it
/// with the caller and, for an end-user token, when the token expires.
pub async fn request_data(
    app: &std::sync::Arc<App>,
    request: async_graphql::Request,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> (async_graphql::Request, Credentials, Option<i64>) {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let credentials = credentials(app, authorization).await;
    let expires_at = match credentials {
        Credentials::Actor(Actor::EndUser { .. }) => end_user_token_expiry(app, authorization),
        _ => None,
    };
    let loader = loader_for(app, credentials);
    let request = request
        .data(credentials)
        .data(client_info(app, peer, headers))
        .data(loader);
    (request, credentials, expires_at)
}
