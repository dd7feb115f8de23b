//! GraphQL over HTTP: `POST /graphql` for any query or mutation, `GET /graphql` for queries
//! (and the WebSocket upgrade); either as an event stream when the client accepts
//! `text/event-stream` (`sse`).
//!
//! The answer is `application/graphql-response+json` when the client accepts it (then a
//! request that fails before execution, such as a syntax error or an unknown field, is a
//! 400 without `data`), else `application/json` with 200. A POST that is neither
//! `application/json` nor multipart (or says nothing) is refused with 415.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use async_graphql::ParseRequestError;
use async_graphql::http::MultipartOptions;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::{StreamExt, TryStreamExt};

use super::auth::{client_info, credentials, request_data};
use super::connections::Slot;
use super::rights::Held;
use super::{HttpState, RequestId, sse, websocket};
use crate::auth::Credentials;
use crate::config::UploadLimits;
use crate::graphql::classify_response;
use crate::graphql::operation_limits;
use crate::metrics::Deliveries;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub async fn post(
    State(state): State<HttpState>,
    Extension(request_id): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !supported_body(&headers) {
        return plain_error(
            &headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a POST carries Content-Type: application/json, or multipart/form-data with files",
        );
    }
    // A multipart body (files) is read only for a caller who is who they say: the rest may
    // not make the server spool anything.
    let presented = if is_multipart(&headers) {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let presented = credentials(&state.app, authorization).await;
        if !matches!(presented.0, Credentials::Actor(_)) {
            return unauthenticated(&headers);
        }
        Some(presented)
    } else {
        None
    };
    match read_request(&state.app.config.uploads, &headers, body).await {
        Ok(request) => execute(&state, request_id, peer, &headers, request, presented).await,
        Err(ParseRequestError::PayloadTooLarge) => {
            let limits = state.app.config.uploads;
            plain_error(
                &headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the request is too large: files may have at most {} bytes each ({} files \
                     at most), other requests {} bytes",
                    limits.max_file_bytes, limits.max_files, limits.max_request_bytes
                ),
            )
        }
        Err(e) => plain_error(
            &headers,
            StatusCode::BAD_REQUEST,
            &format!("invalid request: {e}"),
        ),
    }
}

/// Whether a POST says it carries JSON or a multipart upload: without a Content-Type (or
/// with another one, such as the `text/plain` a bare `fetch` sends) it is refused with 415.
fn supported_body(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media_type = super::media_type(content_type);
    media_type == "application/json" || media_type.starts_with("multipart/")
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| super::media_type(t).starts_with("multipart/"))
}

/// A multipart request without valid credentials: 401, its body left unread.
fn unauthenticated(headers: &HeaderMap) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": "uploads need an Authorization header with a valid token",
            "extensions": { "code": "UNAUTHENTICATED" },
        }]
    });
    json_response(
        accepts_graphql_response_json(headers),
        StatusCode::UNAUTHORIZED,
        serde_json::to_vec(&body),
    )
}

/// The body of a POST: JSON, or a multipart request carrying files (the GraphQL multipart
/// request spec), each within the configured sizes.
async fn read_request(
    limits: &UploadLimits,
    headers: &HeaderMap,
    body: Body,
) -> Result<async_graphql::Request, ParseRequestError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let options = MultipartOptions::default()
        .max_file_size(limits.max_file_bytes)
        .max_num_files(limits.max_files);
    if is_multipart(headers) {
        let reader = body
            .into_data_stream()
            .map_err(std::io::Error::other)
            .into_async_read();
        async_graphql::http::receive_body(content_type, reader, options).await
    } else {
        let bytes = axum::body::to_bytes(body, limits.max_request_bytes)
            .await
            .map_err(|_| ParseRequestError::PayloadTooLarge)?;
        async_graphql::http::receive_body(content_type, &bytes[..], options).await
    }
}

pub async fn get(
    State(state): State<HttpState>,
    Extension(request_id): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    if websocket::is_upgrade(&parts.headers) {
        return websocket::upgrade(state, parts, peer).await;
    }
    let headers = parts.headers;
    let query = parts.uri.query().unwrap_or("");
    let request = match async_graphql::http::parse_query_string(query) {
        Ok(request) => request,
        Err(e) => {
            return plain_error(
                &headers,
                StatusCode::BAD_REQUEST,
                &format!("invalid request: {e}"),
            );
        }
    };
    if is_mutation(&request) {
        let mut response = plain_error(
            &headers,
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations are sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(&state, request_id, peer, &headers, request, None).await
}

/// Answers a request; its time to the answer goes to the request duration histogram (an
/// event stream's, which lasts as long as the subscription, does not).
async fn execute(
    state: &HttpState,
    request_id: RequestId,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: async_graphql::Request,
    presented: Option<(Credentials, Option<Held>)>,
) -> Response {
    let started = std::time::Instant::now();
    let operation_name = request
        .operation_name
        .clone()
        .or_else(|| first_operation_name(&request.query));
    let streamed = sse::wants_event_stream(headers);
    let response = answer(state, request_id, peer, headers, request, presented).await;
    if !streamed {
        let metrics = &state.app.metrics;
        metrics.request_answered(operation_name.as_deref(), started.elapsed());
    }
    response
}

/// The name of a document's first operation (`query History(...) {`), for a request that
/// does not say which it runs: clients send `operationName`, curl and GraphiQL may not.
fn first_operation_name(document: &str) -> Option<String> {
    // The words before the operation's first `{`, `(` or `@`, comments left out; the
    // rest of the document is not read.
    let mut words = document
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .scan(false, |ended, line| {
            if *ended {
                return None;
            }
            let head = line.split(['{', '(', '@']).next().unwrap_or("");
            *ended = head.len() < line.len();
            Some(head)
        })
        .flat_map(str::split_whitespace);
    match words.next()? {
        "query" | "mutation" | "subscription" => words.next().map(str::to_string),
        _ => None,
    }
}

async fn answer(
    state: &HttpState,
    request_id: RequestId,
    peer: SocketAddr,
    headers: &HeaderMap,
    request: async_graphql::Request,
    presented: Option<(Credentials, Option<Held>)>,
) -> Response {
    state
        .app
        .metrics
        .graphql_requests
        .fetch_add(1, Ordering::Relaxed);
    let (mut request, held) = request_data(
        &state.app,
        request.data(request_id),
        peer,
        headers,
        presented,
    )
    .await;
    let answer_size = state.documents.prepare(&mut request);
    let max_root_fields = state.app.config.api_limits.max_root_fields;
    let refused = operation_limits::refused(&mut request, max_root_fields);
    if sse::wants_event_stream(headers) {
        let limits = state.app.config.http;
        let address = client_info(&state.app, peer, headers).ip;
        let address_slot = state
            .live
            .for_address(address.as_deref(), limits.max_connections_per_address);
        let caller_slot = match held {
            Some(held) => state
                .live
                .for_caller(held.actor, limits.max_connections_per_user),
            None => address_slot.as_ref().map(|_| Slot::none()),
        };
        let (Some(address_slot), Some(caller_slot)) = (address_slot, caller_slot) else {
            return too_many_connections(headers);
        };
        let deliveries = Deliveries::default();
        let responses = match refused {
            Some(response) => futures_util::stream::once(async { response }).boxed(),
            None => state
                .schema
                .execute_stream(request.data(deliveries.clone())),
        };
        return sse::respond(
            state,
            request_id,
            responses,
            deliveries,
            held,
            [address_slot, caller_slot],
        )
        .await;
    }
    let strict = accepts_graphql_response_json(headers);
    let timeout = state.app.config.http.request_timeout;
    let mut response = match refused {
        Some(response) => response,
        None => match tokio::time::timeout(timeout, state.schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => return timed_out(strict, request_id, timeout),
        },
    };
    classify_response(&mut response, Some(request_id));
    // A request error (nothing executed) has no data and errors without a path.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if strict && request_error {
        // Nothing was executed: the answer has no `data` entry at all (GraphQL over HTTP).
        let body = serde_json::to_value(&response).map(|mut value| {
            if let Some(object) = value.as_object_mut() {
                object.remove("data");
            }
            value
        });
        return json_response(
            strict,
            StatusCode::BAD_REQUEST,
            body.and_then(|v| serde_json::to_vec(&v)),
        );
    }
    // Written into a buffer of about the size of this document's last answer.
    let mut body = answer_size.buffer();
    // sonic-rs escapes the answer's strings (a chat history's text, mostly) many bytes at a
    // time; serde_json's byte-by-byte escaping was 9% of the server's CPU on a history.
    let written = sonic_rs::to_writer(&mut body, &response).map(|()| {
        answer_size.record(body.len());
        body
    });
    json_response(strict, StatusCode::OK, written)
}

/// Whether the selected operation of a GET request is a mutation. A document that does not
/// parse is left to the executor, which answers with the syntax error.
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let ty = match &document.operations {
        DocumentOperations::Single(op) => Some(op.node.ty),
        DocumentOperations::Multiple(ops) => match &request.operation_name {
            Some(name) => ops.get(name.as_str()).map(|op| op.node.ty),
            None if ops.len() == 1 => ops.values().next().map(|op| op.node.ty),
            None => None,
        },
    };
    ty == Some(OperationType::Mutation)
}

fn accepts_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GRAPHQL_RESPONSE_JSON))
}

/// An error response that did not reach the executor, in the GraphQL response shape.
fn plain_error(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
    });
    json_response(
        accepts_graphql_response_json(headers),
        status,
        serde_json::to_vec(&body),
    )
}

/// A live connection past `WEFT_MAX_CONNECTIONS_PER_*`.
fn too_many_connections(headers: &HeaderMap) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": "too many live connections; close some (WEFT_MAX_CONNECTIONS_PER_USER, WEFT_MAX_CONNECTIONS_PER_ADDRESS)",
            "extensions": { "code": "RATE_LIMITED" },
        }]
    });
    json_response(
        accepts_graphql_response_json(headers),
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::to_vec(&body),
    )
}

/// A query or mutation that ran past `WEFT_REQUEST_TIMEOUT_SECS`: it is dropped (its
/// transaction, if any, rolls back) and the caller told so with 503.
fn timed_out(strict: bool, request_id: RequestId, timeout: std::time::Duration) -> Response {
    tracing::warn!(%request_id, ?timeout, "a request ran past its timeout");
    let body = serde_json::json!({
        "errors": [{
            "message": format!("the request did not finish within {} s", timeout.as_secs()),
            "extensions": { "code": "INTERNAL", "requestId": request_id.to_string() },
        }]
    });
    json_response(
        strict,
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::to_vec(&body),
    )
}

fn json_response<E: std::fmt::Display>(
    strict: bool,
    status: StatusCode,
    body: Result<Vec<u8>, E>,
) -> Response {
    let content_type = if strict {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    let (status, body) = match body {
        Ok(body) => (status, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a GraphQL response");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{\"errors\":[{\"message\":\"internal error\",\"extensions\":{\"code\":\"INTERNAL\"}}]}".to_vec())
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::first_operation_name;
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{ErrorExtensionValues, Name, PathSegment, Pos, ServerError, Value};

    #[test]
    fn the_first_operation_names_a_request_without_operation_name() {
        let named = |d: &str| first_operation_name(d);
        assert_eq!(
            named("query History($id: UUID!) { a }").as_deref(),
            Some("History")
        );
        assert_eq!(
            named("# a comment { \n mutation Send { a }").as_deref(),
            Some("Send")
        );
        assert_eq!(
            named("subscription Live@live { a }").as_deref(),
            Some("Live")
        );
        assert_eq!(named("query { health { version } }"), None);
        assert_eq!(named("{ health { version } }"), None);
    }

    #[test]
    fn answers_are_written_as_serde_json_writes_them() {
        // Text that must be escaped, at every offset of a SIMD block, and text that must not.
        let mut texts: Vec<String> = [
            "plain",
            "quote \" and backslash \\ and slash /",
            "lines\nand\r\ttabs, NUL \u{0}, US \u{1f}, DEL \u{7f}",
            "中文，emoji 🧵, é, </script>, \u{2028} \u{2029}",
            "",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for at in 0..70 {
            texts.push(format!(
                "{}\"{}\n\u{1}é",
                "x".repeat(at),
                "y".repeat(at % 17)
            ));
        }
        let list = texts.into_iter().map(Value::String).collect();
        let numbers = [0.0, -1.5, 0.1, 1e21, 123456.789, f64::MIN_POSITIVE, 2.5e-8]
            .into_iter()
            .map(Value::from)
            .chain([
                Value::from(i64::MAX),
                Value::from(-7),
                Value::from(u64::MAX),
            ])
            .collect();
        let mut data = IndexMap::new();
        data.insert(Name::new("texts"), Value::List(list));
        data.insert(Name::new("numbers"), Value::List(numbers));
        data.insert(
            Name::new("flags"),
            Value::List(vec![true.into(), Value::Null]),
        );
        data.insert(Name::new("role"), Value::Enum(Name::new("ASSISTANT")));
        let mut error = ServerError::new("not \"found\"\n", Some(Pos { line: 1, column: 2 }));
        error.path = vec![PathSegment::Field("a".into()), PathSegment::Index(3)];
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", "NOT_FOUND");
        error.extensions = Some(extensions);
        let mut response =
            async_graphql::Response::new(Value::Object(data)).extension("x", Value::from(1));
        response.errors = vec![error];
        let ours = sonic_rs::to_vec(&response).expect("sonic-rs writes the answer");
        let theirs = serde_json::to_vec(&response).expect("serde_json writes the answer");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }
}
