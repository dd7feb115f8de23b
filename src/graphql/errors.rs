//! Gives every error of a GraphQL response its `extensions.code` (API.md, "Errors").
//!
//! Errors raised by our code carry an `AppError` as their source; errors raised by the
//! GraphQL engine itself (syntax, unknown fields, bad argument values, limits) are the
//! client's request being wrong: `BAD_USER_INPUT`. Internal errors are logged with the
//! request id and shown only as a generic message carrying that id.

use async_graphql::{Response, ServerError};

use crate::error::AppError;
use crate::http::RequestId;

/// Classifies every error of a response; each transport calls it on what it sends. (A
/// schema extension would do the same but puts every field of every query on a slower,
/// boxed path; see BENCHMARKS.md.)
pub fn classify_response(response: &mut Response, request_id: Option<RequestId>) {
    for error in &mut response.errors {
        classify(error, request_id);
    }
}

/// A response as a streaming transport sends it: classified, then serialized (a response
/// that cannot be serialized is logged and answered with an INTERNAL error).
pub fn streamed_json(mut response: Response, request_id: Option<RequestId>) -> String {
    classify_response(&mut response, request_id);
    serde_json::to_string(&response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a GraphQL response");
        r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#.into()
    })
}

/// Sets `extensions.code` (and `field`, `requestId` where they apply) on one error.
pub fn classify(error: &mut ServerError, request_id: Option<RequestId>) {
    let source_arc = error.source.clone();
    // Loaders fail with an `Arc<AppError>` (their errors are shared by every key of a
    // batch); it is the same error.
    let source = source_arc.as_deref().and_then(|s| {
        s.downcast_ref::<AppError>().or_else(|| {
            s.downcast_ref::<std::sync::Arc<AppError>>()
                .map(|a| a.as_ref())
        })
    });
    let code = source.map_or("BAD_USER_INPUT", AppError::code);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_some() {
        return;
    }
    extensions.set("code", code);
    match source {
        Some(AppError::BadUserInput { field, .. }) => extensions.set("field", field.as_str()),
        Some(AppError::Internal(detail)) => {
            let id = request_id.unwrap_or_default();
            tracing::error!(request_id = %id, path = ?error.path, error = %detail, "internal error");
            error.message = "internal error".to_string();
            extensions.set("requestId", id.to_string());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Pos, Value};

    use super::*;

    fn server_error(error: AppError) -> ServerError {
        async_graphql::Error::new_with_source(error).into_server_error(Pos::default())
    }

    fn extension(error: &ServerError, name: &str) -> Option<Value> {
        error.extensions.as_ref().and_then(|e| e.get(name)).cloned()
    }

    #[test]
    fn internal_errors_show_a_generic_message_and_the_request_id() {
        let id = RequestId::new();
        let mut error = server_error(AppError::internal(std::io::Error::other("password=x")));
        classify(&mut error, Some(id));
        assert_eq!(error.message, "internal error");
        assert_eq!(extension(&error, "code"), Some(Value::from("INTERNAL")));
        assert_eq!(
            extension(&error, "requestId"),
            Some(Value::from(id.to_string()))
        );
    }

    #[test]
    fn a_loader_failure_is_internal_with_the_request_id() {
        let id = RequestId::new();
        let shared = std::sync::Arc::new(AppError::internal("connection reset"));
        let mut error =
            async_graphql::Error::new_with_source(shared).into_server_error(Pos::default());
        classify(&mut error, Some(id));
        assert_eq!(error.message, "internal error");
        assert_eq!(extension(&error, "code"), Some(Value::from("INTERNAL")));
        assert_eq!(
            extension(&error, "requestId"),
            Some(Value::from(id.to_string()))
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let mut error = server_error(AppError::bad_input("input.email", "not an email address"));
        classify(&mut error, None);
        assert_eq!(error.message, "not an email address");
        assert_eq!(
            extension(&error, "code"),
            Some(Value::from("BAD_USER_INPUT"))
        );
        assert_eq!(extension(&error, "field"), Some(Value::from("input.email")));
    }

    #[test]
    fn engine_errors_are_bad_user_input() {
        let mut error = ServerError::new("Unknown field", None);
        classify(&mut error, None);
        assert_eq!(
            extension(&error, "code"),
            Some(Value::from("BAD_USER_INPUT"))
        );
    }

    #[test]
    fn each_variant_has_its_code() {
        for (error, code) in [
            (AppError::Unauthenticated, "UNAUTHENTICATED"),
            (AppError::Forbidden, "FORBIDDEN"),
            (AppError::NotFound("workflow"), "NOT_FOUND"),
            (AppError::Conflict("taken".into()), "CONFLICT"),
            (AppError::RateLimited, "RATE_LIMITED"),
            (AppError::QuotaExceeded("quota".into()), "QUOTA_EXCEEDED"),
        ] {
            let mut error = server_error(error);
            classify(&mut error, None);
            assert_eq!(extension(&error, "code"), Some(Value::from(code)));
        }
    }
}
