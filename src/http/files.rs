//! `GET /files/{id}`: the bytes of an uploaded file, for members of its workspace, with the
//! same `Authorization` header as `/graphql`. Always served as a download (never rendered in
//! the API's origin), with the SHA-256 as ETag.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::auth::credentials;
use super::{HttpState, RequestId};
use crate::error::AppError;
use crate::files;

pub async fn download(
    State(state): State<HttpState>,
    Extension(request_id): Extension<RequestId>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match serve(&state, &headers, &id).await {
        Ok(response) => response,
        Err(e) => error_response(&e, request_id),
    }
}

async fn serve(state: &HttpState, headers: &HeaderMap, id: &str) -> Result<Response, AppError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let actor = credentials(&state.app, authorization).await.0.actor()?;
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound("file"))?;
    let mut conn = state.app.pool.get().await?;
    let (file, bytes) = files::read(&mut conn, actor, &state.app.store, id).await?;
    drop(conn);
    let etag = format!("\"{}\"", file.sha256);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(bytes))
    };
    let h = response.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).map_err(AppError::internal);
    h.insert(header::CONTENT_TYPE, value(&file.mime_type)?);
    h.insert(header::ETAG, value(&etag)?);
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&disposition(&file.name))?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// `attachment` with the name in RFC 5987 form (UTF-8, percent-encoded).
fn disposition(name: &str) -> String {
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename*=UTF-8''{encoded}")
}

fn error_response(error: &AppError, request_id: RequestId) -> Response {
    let status = match error {
        AppError::Unauthenticated | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut extensions = serde_json::json!({ "code": error.code() });
    let message = if let AppError::Internal(detail) = error {
        tracing::error!(request_id = %request_id, error = %detail, "internal error");
        extensions["requestId"] = request_id.to_string().into();
        "internal error".to_string()
    } else {
        error.to_string()
    };
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(
            disposition("rapport été.pdf"),
            "attachment; filename*=UTF-8''rapport%20%C3%A9t%C3%A9.pdf"
        );
        assert_eq!(
            disposition("a\"b;c"),
            "attachment; filename*=UTF-8''a%22b%3Bc"
        );
    }
}
