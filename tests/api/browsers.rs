//! What browsers need: CORS from the allowed origins only, compression of documents but never
//! of streams, a GraphiQL that loads nothing from elsewhere, and GraphQL over HTTP's rules.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::register;

const DEV_SERVER: &str = "http://localhost:5173";

async fn with_dev_origin() -> TestServer {
    TestServer::start_with(|config| {
        config.allowed_origins = weft::config::AllowedOrigins::list(&[DEV_SERVER]);
    })
    .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(server: &TestServer, path: &str, origin: &str) -> reqwest::Response {
    server
        .client
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, apollographql-client-name",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_lets_listed_origins_in_and_no_others() {
    let server = with_dev_origin().await;
    for path in [
        "/graphql",
        "/files/00000000-0000-0000-0000-000000000000",
        "/schema.graphql",
    ] {
        let answer = preflight(&server, path, DEV_SERVER).await;
        assert_eq!(answer.status(), 204, "{path}");
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            Some(DEV_SERVER)
        );
        let methods = header(&answer, "access-control-allow-methods").unwrap();
        for method in ["GET", "POST", "OPTIONS"] {
            assert!(methods.contains(method), "{methods}");
        }
        let headers = header(&answer, "access-control-allow-headers").unwrap();
        for name in [
            "authorization",
            "content-type",
            "accept",
            "apollographql-client-name",
        ] {
            assert!(headers.contains(name), "{headers}");
        }
        assert_eq!(header(&answer, "access-control-max-age"), Some("600"));
        assert!(header(&answer, "vary").unwrap().contains("origin"));
        assert!(header(&answer, "x-request-id").is_some());

        let foreign = preflight(&server, path, "https://evil.example").await;
        assert!(
            header(&foreign, "access-control-allow-origin").is_none(),
            "{path}: a foreign origin is not allowed"
        );
    }

    // The request itself: the origin allowed, the request id readable by the page.
    let answer = server
        .client
        .post(server.url("/graphql"))
        .header("origin", DEV_SERVER)
        .json(&json!({ "query": "{ health { version } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(DEV_SERVER)
    );
    assert_eq!(
        header(&answer, "access-control-expose-headers"),
        Some("x-request-id")
    );
    let foreign = server
        .client
        .post(server.url("/graphql"))
        .header("origin", "https://evil.example")
        .json(&json!({ "query": "{ health { version } }" }))
        .send()
        .await
        .unwrap();
    assert!(header(&foreign, "access-control-allow-origin").is_none());

    // Unset, only the server's own origin is a browser origin it answers.
    let same_origin_only = TestServer::start().await;
    let answer = preflight(&same_origin_only, "/graphql", DEV_SERVER).await;
    assert!(header(&answer, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn documents_are_compressed_when_accepted_and_streams_never() {
    let server = TestServer::start().await;
    let sdl = |encoding: &'static str| {
        server
            .client
            .get(server.url("/schema.graphql"))
            .header("accept-encoding", encoding)
            .send()
    };
    let plain = sdl("identity").await.unwrap();
    assert!(header(&plain, "content-encoding").is_none());
    let plain_len = plain.bytes().await.unwrap().len();

    let gzip = sdl("gzip").await.unwrap();
    assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
    assert!(header(&gzip, "vary").unwrap().contains("accept-encoding"));
    let bytes = gzip.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        bytes.len() * 2 < plain_len,
        "{} of {plain_len}",
        bytes.len()
    );

    let brotli = sdl("br").await.unwrap();
    assert_eq!(header(&brotli, "content-encoding"), Some("br"));
    assert!(brotli.bytes().await.unwrap().len() * 2 < plain_len);

    // A JSON answer over a kilobyte is compressed; a small one is not worth it.
    let introspection = server
        .client
        .post(server.url("/graphql"))
        .header("accept-encoding", "gzip")
        .json(&json!({ "query": "{ __schema { types { name description } } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&introspection, "content-encoding"), Some("gzip"));
    let small = server
        .client
        .post(server.url("/graphql"))
        .header("accept-encoding", "gzip")
        .json(&json!({ "query": "{ health { version } }" }))
        .send()
        .await
        .unwrap();
    assert!(header(&small, "content-encoding").is_none());

    // An event stream goes out as it is written, whatever the client accepts.
    let owner = register(&server, "sse@example.com").await;
    let sse = server
        .client
        .post(server.url("/graphql"))
        .header("accept", "text/event-stream")
        .header("accept-encoding", "gzip, br")
        .bearer_auth(&owner.access_token)
        .json(&json!({ "query": "{ __schema { types { name description } } }" }))
        .send()
        .await
        .unwrap();
    assert!(
        header(&sse, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(header(&sse, "content-encoding").is_none());
    let body = sse.text().await.unwrap();
    assert!(body.starts_with("event: next"), "{}", &body[..40]);
}

#[tokio::test]
async fn graphiql_is_served_whole_from_this_server() {
    let server = TestServer::start().await;
    let page = server.get("/graphiql").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(!html.contains("development"), "production builds only");
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            assets.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert_eq!(assets.len(), 4, "{assets:?}");
    for asset in assets {
        assert!(asset.starts_with("/graphiql/"), "{asset}");
        let answer = server.get(&asset).await;
        assert_eq!(answer.status(), 200, "{asset}");
        assert_eq!(
            header(&answer, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let body = answer.bytes().await.unwrap();
        assert!(body.len() > 1000, "{asset}");
    }
    assert_eq!(server.get("/graphiql/nothing.js").await.status(), 404);
    assert_eq!(server.get("/graphiql/").await.status(), 200);
}

#[tokio::test]
async fn graphql_over_http_refuses_what_it_should() {
    let server = TestServer::start().await;
    // A POST that does not say what it carries.
    let untyped = server
        .client
        .post(server.url("/graphql"))
        .body(r#"{"query":"{ health { version } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(untyped.status(), 415);
    let body: Value = untyped.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Nor one saying it is something else (what a bare `fetch` of a string says).
    let plain = server
        .client
        .post(server.url("/graphql"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"{"query":"{ health { version } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 415);

    // A document that does not parse or validate: 400 with no `data` entry at all.
    for query in ["{ health { ", "{ nothing }"] {
        let answer = server
            .client
            .post(server.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{query}");
        let body: Value = answer.json().await.unwrap();
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
}
