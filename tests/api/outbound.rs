//! The outbound guard on model providers: a workspace cannot make the server call private
//! addresses (by address or by name) unless the operator allows them, and nothing it gets
//! back from such a place is echoed.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::harness::TestServer;
use crate::harness::accounts::data;
use crate::harness::chat::{STREAM, chat_app, send};
use crate::harness::live::Ws;
use crate::harness::model_server::ModelServer;

/// The reply's stream: its last event.
async fn last_event(server: &TestServer, key: &str, message: &str) -> serde_json::Value {
    let mut ws = Ws::connect(server, "graphql-transport-ws", Some(key)).await;
    ws.subscribe("1", STREAM, json!({ "id": message })).await;
    let events = ws.until_complete("1").await;
    events.last().unwrap()["data"]["messageStream"].clone()
}

#[tokio::test]
async fn a_provider_on_a_private_address_is_refused_unless_allowed() {
    let models = ModelServer::start().await;
    let server = TestServer::start_with(|c| c.outbound = Default::default()).await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;

    // By address: the URL names 127.0.0.1.
    let sent = send(&server, &app, "Hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let last = last_event(&server, &app.key, reply).await;
    assert_eq!(last["kind"], "ERROR", "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("refused"),
        "{last}"
    );

    // By name: localhost resolves to a loopback address.
    let by_name = models.base_url.replace("127.0.0.1", "localhost");
    data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: UpdateLlmProviderInput!) { updateLlmProvider(input: $i) { baseUrl } }",
                json!({ "i": { "id": app.provider, "baseUrl": by_name, "apiKey": crate::harness::model_server::KEY } }),
            )
            .await,
    );
    let sent = send(&server, &app, "Hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let last = last_event(&server, &app.key, reply).await;
    assert_eq!(last["kind"], "ERROR", "{last}");
    let error = last["error"].as_str().unwrap();
    assert!(error.contains("localhost resolves to"), "{error}");
    assert_eq!(
        models.seen.requests.load(Ordering::SeqCst),
        0,
        "the model server was never called"
    );

    // Allowed by the operator, the same provider answers.
    let allowed = TestServer::start_with(|c| {
        c.outbound.allowed = vec![weft::outbound::Network::parse("127.0.0.1").unwrap()];
    })
    .await;
    let app = chat_app(&allowed, &models.base_url, "gpt-test", None).await;
    let sent = send(&allowed, &app, "Hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let last = last_event(&allowed, &app.key, reply).await;
    assert_eq!(last["kind"], "END", "{last}");
    assert!(models.seen.requests.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn redirects_are_not_followed_and_foreign_error_pages_are_not_echoed() {
    // A "provider" that redirects chat completions elsewhere, and errors with an HTML page.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let followed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = followed.clone();
    tokio::spawn(async move {
        let router = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::SEE_OTHER,
                        [(axum::http::header::LOCATION, "/internal/secrets")],
                    )
                }),
            )
            .route(
                "/internal/secrets",
                axum::routing::get(move || {
                    seen.fetch_add(1, Ordering::SeqCst);
                    async { "root:x:0:0" }
                }),
            )
            .route(
                "/v2/chat/completions",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        "<html>internal admin console: db password hunter2</html>",
                    )
                }),
            );
        let _ = axum::serve(listener, router).await;
    });
    let server = TestServer::start().await;
    let app = chat_app(
        &server,
        &format!("http://127.0.0.1:{port}/v1"),
        "gpt-test",
        None,
    )
    .await;
    let sent = send(&server, &app, "Hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let last = last_event(&server, &app.key, reply).await;
    assert_eq!(last["kind"], "ERROR", "{last}");
    assert!(last["error"].as_str().unwrap().contains("303"), "{last}");
    assert_eq!(
        followed.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );

    data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: UpdateLlmProviderInput!) { updateLlmProvider(input: $i) { baseUrl } }",
                json!({ "i": { "id": app.provider, "baseUrl": format!("http://127.0.0.1:{port}/v2"),
                               "apiKey": "sk-other" } }),
            )
            .await,
    );
    let sent = send(&server, &app, "Hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap();
    let last = last_event(&server, &app.key, reply).await;
    let error = last["error"].as_str().unwrap();
    assert!(error.contains("400"), "{error}");
    assert!(
        !error.contains("hunter2") && !error.contains("html"),
        "{error}"
    );
}

#[tokio::test]
async fn a_new_base_url_without_the_key_entered_again_drops_the_stored_key() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    const UPDATE: &str = "mutation($i: UpdateLlmProviderInput!) { updateLlmProvider(input: $i) { baseUrl hasApiKey } }";
    let renamed = data(
        server
            .graphql_as(
                app.owner.token(),
                UPDATE,
                json!({ "i": { "id": app.provider, "name": "Renamed", "baseUrl": models.base_url } }),
            )
            .await,
    );
    assert_eq!(
        renamed["updateLlmProvider"]["hasApiKey"], true,
        "the same URL keeps the key"
    );
    let moved = data(
        server
            .graphql_as(
                app.owner.token(),
                UPDATE,
                json!({ "i": { "id": app.provider, "baseUrl": "https://collector.example/v1" } }),
            )
            .await,
    );
    assert_eq!(moved["updateLlmProvider"]["hasApiKey"], false);
    let with_key = data(
        server
            .graphql_as(
                app.owner.token(),
                UPDATE,
                json!({ "i": { "id": app.provider, "baseUrl": models.base_url, "apiKey": "sk-new" } }),
            )
            .await,
    );
    assert_eq!(with_key["updateLlmProvider"]["hasApiKey"], true);
}
