//! The caller of a request, decoded once per request from its `Authorization` header.

use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Someone acting through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A tenant user (builder, admin), authenticated by an access token.
    User { user_id: Uuid },
    /// An application's API key: may use that application's end-user operations only.
    ApiKey {
        key_id: Uuid,
        application_id: Uuid,
        workspace_id: Uuid,
    },
}

impl Actor {
    /// The tenant user behind this actor; an API key is FORBIDDEN builder operations.
    pub fn user_id(&self) -> AppResult<Uuid> {
        match self {
            Actor::User { user_id } => Ok(*user_id),
            Actor::ApiKey { .. } => Err(AppError::Forbidden),
        }
    }
}

/// What the request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    Anonymous,
    /// A header whose token is not valid (wrong key, expired, wrong audience, not a JWT...).
    Invalid,
    Actor(Actor),
}

impl Credentials {
    /// The authenticated actor, or UNAUTHENTICATED; every bad-token case reads the same.
    pub fn actor(&self) -> AppResult<Actor> {
        match self {
            Credentials::Actor(actor) => Ok(*actor),
            Credentials::Anonymous | Credentials::Invalid => Err(AppError::Unauthenticated),
        }
    }
}

/// Where a request came from, for rate limits and the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}
