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
    /// One end user of one application, holding an end-user token minted with the API key
    /// `key_id`: may chat as that end user only, and see only its own conversations.
    EndUser {
        key_id: Uuid,
        application_id: Uuid,
        workspace_id: Uuid,
        /// The `end_users` row.
        end_user_id: Uuid,
    },
}

impl Actor {
    /// The tenant user behind this actor; API keys and end users are FORBIDDEN builder
    /// operations.
    pub fn user_id(&self) -> AppResult<Uuid> {
        match self {
            Actor::User { user_id } => Ok(*user_id),
            Actor::ApiKey { .. } | Actor::EndUser { .. } => Err(AppError::Forbidden),
        }
    }

    /// The application an API key or an end user acts for, and its workspace.
    pub fn application(&self) -> Option<(Uuid, Uuid)> {
        match self {
            Actor::ApiKey {
                application_id,
                workspace_id,
                ..
            }
            | Actor::EndUser {
                application_id,
                workspace_id,
                ..
            } => Some((*application_id, *workspace_id)),
            Actor::User { .. } => None,
        }
    }

    /// The API key behind this actor (its own, or the one its end-user token was minted
    /// with): revoking it ends the actor's rights.
    pub fn api_key_id(&self) -> Option<Uuid> {
        match self {
            Actor::ApiKey { key_id, .. } | Actor::EndUser { key_id, .. } => Some(*key_id),
            Actor::User { .. } => None,
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
