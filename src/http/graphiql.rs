//! GraphiQL, the redirect to it, and the SDL.

use async_graphql::http::GraphiQLSource;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect};

use super::HttpState;

/// GraphiQL pointed at `/graphql` for HTTP and WebSocket.
pub async fn page() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Weft GraphiQL")
            .finish(),
    )
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
