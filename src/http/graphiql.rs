//! GraphiQL, the redirect to it, and the SDL.
//!
//! GraphiQL and React are production builds shipped inside the binary (`graphiql/`, with
//! their licences): the page works on a machine without internet and names no other host.
//! The assets carry their version in their names, so browsers may keep them for a year.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::HttpState;

/// The page: GraphiQL pointed at `/graphql` for HTTP and WebSocket.
const PAGE: &str = include_str!("graphiql/index.html");

/// The files the page loads, by the name it loads them under.
const ASSETS: [(&str, &[u8], &str); 4] = [
    (
        "graphiql-4.1.2.min.js",
        include_bytes!("graphiql/graphiql-4.1.2.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "graphiql-4.1.2.min.css",
        include_bytes!("graphiql/graphiql-4.1.2.min.css"),
        "text/css; charset=utf-8",
    ),
    (
        "react-18.3.1.production.min.js",
        include_bytes!("graphiql/react-18.3.1.production.min.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "react-dom-18.3.1.production.min.js",
        include_bytes!("graphiql/react-dom-18.3.1.production.min.js"),
        "text/javascript; charset=utf-8",
    ),
];

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /graphiql/{file}`: one of the page's assets, cacheable for a year.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, bytes, content_type)) => {
            let mut response = Response::new(axum::body::Body::from(*bytes));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            response
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

pub async fn redirect() -> Redirect {
    Redirect::temporary("/graphiql")
}

/// The SDL of the running schema, identical to the checked-in `schema.graphql`.
pub async fn schema_sdl(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.schema.sdl(),
    )
}
