//! What browsers need around every endpoint: CORS for pages of other origins, and
//! compression of documents that are worth it.
//!
//! CORS follows `WEFT_ALLOWED_ORIGINS`, the same list that governs the WebSocket `Origin`
//! check (`http::origins`): an origin not in it gets no
//! `Access-Control-Allow-Origin`, and its page cannot read the answer. Preflights are
//! answered 204 and cached by the browser for `MAX_AGE`.
//!
//! Compression (gzip or brotli, as the client accepts) applies to JSON, the SDL, GraphiQL's
//! page and its scripts above 1 KiB; never to event streams or WebSockets, whose frames
//! must leave as soon as they are written, nor to uploaded files, served as they were given.

use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{self, HeaderName};
use axum::http::{HeaderValue, Method, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::origins::AllowedOrigins;

/// How long a browser may reuse a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Answers smaller than this are sent as they are: compressing them saves nothing.
const MIN_COMPRESSED_BYTES: u16 = 1024;

/// Request headers a cross-origin page may send: the credential and content negotiation,
/// Apollo Client's (client awareness, CSRF prevention, operation name) and graphql-sse's
/// reservation token.
const ALLOWED_HEADERS: [&str; 9] = [
    "authorization",
    "content-type",
    "accept",
    "apollographql-client-name",
    "apollographql-client-version",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "x-graphql-event-stream-token",
    "x-request-id",
];

/// The CORS layer of the router, from the configured origins.
pub fn cors(origins: &AllowedOrigins) -> CorsLayer {
    let origins = origins.clone();
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, parts: &Parts| {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        origin.to_str().is_ok_and(|o| origins.allows(o, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(MAX_AGE)
}

/// Middleware: a preflight (answered by the CORS layer with an empty 200) becomes 204 No
/// Content, what browsers and API gateways expect of it.
pub async fn preflight_no_content(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// Which answers are compressed: documents by content type, above the minimum size.
#[derive(Clone, Copy)]
pub struct Compressible;

/// The content types worth compressing; everything else (event streams, files, upgrades)
/// goes out untouched.
fn compressible_type(content_type: &str) -> bool {
    matches!(
        super::media_type(content_type).as_str(),
        "application/json"
            | "application/graphql-response+json"
            | "text/plain"
            | "text/html"
            | "text/css"
            | "text/javascript"
            | "application/javascript"
    )
}

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: axum::body::HttpBody,
    {
        let typed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(compressible_type);
        typed && SizeAbove::new(MIN_COMPRESSED_BYTES).should_compress(response)
    }
}

/// The compression layer: gzip or brotli, whichever the client prefers, at level 1 (nginx's
/// default for gzip). Measured on the 250 KB chat-history answer (BENCHMARKS.md): level 1
/// takes it to a quarter in about 2 ms; level 6 saves a fifth more and costs 7 ms, which
/// halved the requests served per second on two cores.
pub fn compression() -> CompressionLayer<Compressible> {
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(1))
        .compress_when(Compressible)
}

#[cfg(test)]
mod tests {
    use super::compressible_type;

    #[test]
    fn documents_are_compressed_and_streams_are_not() {
        assert!(compressible_type("application/json"));
        assert!(compressible_type(
            "application/graphql-response+json; charset=utf-8"
        ));
        assert!(compressible_type("text/plain; charset=utf-8"));
        assert!(compressible_type("text/javascript"));
        assert!(!compressible_type("text/event-stream"));
        assert!(!compressible_type("application/pdf"));
        assert!(!compressible_type("application/octet-stream"));
    }
}
