//! The one error type of the service and its stable codes (API.md, "Errors").
//!
//! Resolvers return `AppError` through `?`; the GraphQL layer (`graphql::errors`) turns it
//! into `extensions.code`. `Display` is what a client may read: internal details are kept
//! in the `Internal` variant and only ever logged, with the request id.

use std::fmt;

/// What went wrong, as a client is told it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("authentication required")]
    Unauthenticated,
    /// A failed login: the same answer for an unknown email and a wrong password.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    BadUserInput { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts, try again later")]
    RateLimited,
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("internal error")]
    Internal(InternalError),
}

/// The detail of an internal error: logged, never shown.
pub struct InternalError(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl AppError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated | AppError::InvalidCredentials => "UNAUTHENTICATED",
            AppError::Forbidden => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::BadUserInput { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::RateLimited => "RATE_LIMITED",
            AppError::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// A bad input naming the field it concerns.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Wraps any error as internal: the client sees a generic message.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AppError {
        AppError::Internal(InternalError(error.into()))
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => AppError::NotFound("object"),
            other => AppError::internal(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AppError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        AppError::internal(error)
    }
}

impl From<redis::RedisError> for AppError {
    fn from(error: redis::RedisError) -> Self {
        AppError::internal(error)
    }
}

/// Results of business rules.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_show_nothing_of_their_cause() {
        let e = AppError::internal(std::io::Error::other("password=hunter2"));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.code(), "INTERNAL");
    }

    #[test]
    fn diesel_not_found_is_not_found() {
        assert_eq!(
            AppError::from(diesel::result::Error::NotFound).code(),
            "NOT_FOUND"
        );
    }
}
