//! Gives every error of a GraphQL response its `extensions.code` (API.md, "Errors").
//!
//! Errors raised by our code carry an `AppError` as their source; errors raised by the
//! GraphQL engine itself (syntax, unknown fields, bad argument values, limits) are the
//! client's request being wrong: `BAD_USER_INPUT`. Internal errors are logged with the
//! request id and shown only as a generic message carrying that id.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Response, ServerError};

use crate::error::AppError;
use crate::http::RequestId;

/// The extension that classifies errors.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let request_id = ctx.data_opt::<RequestId>().copied();
        for error in &mut response.errors {
            classify(error, request_id);
        }
        response
    }
}

/// Sets `extensions.code` (and `field`, `requestId` where they apply) on one error.
pub fn classify(error: &mut ServerError, request_id: Option<RequestId>) {
    let source_arc = error.source.clone();
    let source = source_arc
        .as_deref()
        .and_then(|s| s.downcast_ref::<AppError>());
    let code = source.map_or("BAD_USER_INPUT", AppError::code);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_some() {
        return;
    }
    extensions.set("code", code);
    match source {
        Some(AppError::BadUserInput { field, .. }) => extensions.set("field", field.as_str()),
        Some(AppError::Internal(detail)) => {
            let id = request_id.unwrap_or_else(RequestId::new);
            tracing::error!(request_id = %id, path = ?error.path, error = %detail, "internal error");
            error.message = "internal error".to_string();
            extensions.set("requestId", id.to_string());
        }
        _ => {}
    }
}
