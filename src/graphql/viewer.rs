//! Who reads through a request's loaders, and so what every loader statement keeps.
//!
//! A builder sees the workspaces of its teams. An application's API key sees its own
//! application and that application's conversations, messages, feedback and the segments
//! its replies used. An end user (an end-user token) sees only its own conversations of that
//! application and what hangs below them. Relations that are not theirs load nothing.

use uuid::Uuid;

use crate::auth::{Actor, Credentials};

/// The reader of one request or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// No credential, or one that is not valid: sees nothing.
    Nobody,
    /// A builder.
    User(Uuid),
    /// An application's API key.
    Application {
        application_id: Uuid,
        workspace_id: Uuid,
    },
    /// One end user of one application.
    EndUser {
        application_id: Uuid,
        workspace_id: Uuid,
        end_user_id: Uuid,
    },
}

impl Viewer {
    pub fn of(credentials: &Credentials) -> Viewer {
        match credentials {
            Credentials::Actor(Actor::User { user_id }) => Viewer::User(*user_id),
            Credentials::Actor(Actor::ApiKey {
                application_id,
                workspace_id,
                ..
            }) => Viewer::Application {
                application_id: *application_id,
                workspace_id: *workspace_id,
            },
            Credentials::Actor(Actor::EndUser {
                application_id,
                workspace_id,
                end_user_id,
                ..
            }) => Viewer::EndUser {
                application_id: *application_id,
                workspace_id: *workspace_id,
                end_user_id: *end_user_id,
            },
            Credentials::Anonymous | Credentials::Invalid => Viewer::Nobody,
        }
    }

    /// The builder reading, if it is one.
    pub fn user(&self) -> Option<Uuid> {
        match self {
            Viewer::User(user_id) => Some(*user_id),
            _ => None,
        }
    }

    /// The application an API key or end user reads within, with its workspace.
    pub fn application(&self) -> Option<(Uuid, Uuid)> {
        match self {
            Viewer::Application {
                application_id,
                workspace_id,
            }
            | Viewer::EndUser {
                application_id,
                workspace_id,
                ..
            } => Some((*application_id, *workspace_id)),
            Viewer::Nobody | Viewer::User(_) => None,
        }
    }

    /// The end user reading, if it is one.
    pub fn end_user(&self) -> Option<Uuid> {
        match self {
            Viewer::EndUser { end_user_id, .. } => Some(*end_user_id),
            _ => None,
        }
    }
}
