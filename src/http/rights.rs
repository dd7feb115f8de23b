//! When the rights a live connection opened with end: its access token expired or its
//! session ended (logout, password reset, a reused refresh token), its API key revoked (or
//! its application deleted), or its end-user token expired, on whichever instance that
//! happened. WebSockets close with 4403 and SSE responses end then (`RightsWatch`); a
//! WebSocket also checks again before each new operation (`still_held`).

use std::future::pending;
use std::time::Duration;

use uuid::Uuid;

use crate::app::App;
use crate::application::api_keys;
use crate::auth::Actor;
use crate::identity::sessions;
use crate::realtime::bus::{Delivery, Missed};
use crate::realtime::events::Event;

/// The credential a connection holds: who, until when, in which session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub actor: Actor,
    /// When the token expires (seconds since the epoch); `None` for an API key.
    pub expires_at: Option<i64>,
    /// The session an access token was issued for.
    pub session_id: Option<Uuid>,
}

/// Why a connection's rights ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
    SignedOut,
}

impl Ended {
    pub fn reason(self) -> &'static str {
        match self {
            Ended::Revoked => "the credential was revoked",
            Ended::Expired => "the token expired",
            Ended::SignedOut => "the session ended",
        }
    }
}

/// The announcements that may end one connection's rights, followed from before its
/// credential was last checked, so no change falls in between.
pub struct RightsWatch {
    held: Held,
    changes: crate::realtime::bus::Subscription,
}

impl RightsWatch {
    /// Subscribes to the announcements, then checks the credential in the database once:
    /// `Err` says why it no longer stands.
    pub async fn open(app: &App, held: Held) -> Result<RightsWatch, Ended> {
        if expired(held) {
            return Err(Ended::Expired);
        }
        let channel = app.realtime.names().rights();
        let changes = app.realtime.bus.subscribe(&channel).await;
        match withdrawn_now(app, held).await {
            Some(ended) => Err(ended),
            None => Ok(RightsWatch { held, changes }),
        }
    }

    /// Resolves when the rights end: the token expires, or an announcement (or, after
    /// missed ones, the database) says the session or key is gone.
    pub async fn ended(mut self, app: &App) -> Ended {
        let held = self.held;
        let expiry = async {
            match held.expires_at {
                Some(at) => {
                    let left = at.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                    tokio::time::sleep(Duration::from_secs(left.unsigned_abs())).await;
                }
                None => pending::<()>().await,
            }
        };
        let withdrawn = async {
            loop {
                match self.changes.recv().await {
                    Ok(Delivery::Event(event)) => {
                        if let Some(ended) = ends(&event, held) {
                            return ended;
                        }
                    }
                    // Announcements may have been missed: ask the database.
                    Ok(Delivery::Resync) | Err(Missed::Lagged) => {
                        // Boxed: rare, and large beside the wait this future spends its
                        // life in.
                        if let Some(ended) = Box::pin(withdrawn_now(app, held)).await {
                            return ended;
                        }
                    }
                    Err(Missed::Closed) => return pending().await,
                }
            }
        };
        tokio::select! {
            () = expiry => Ended::Expired,
            ended = withdrawn => ended,
        }
    }
}

fn expired(held: Held) -> bool {
    held.expires_at
        .is_some_and(|at| at <= chrono::Utc::now().timestamp())
}

/// Whether `held` still stands now (checked in the database): `Err` says why not.
pub async fn still_held(app: &App, held: Held) -> Result<(), Ended> {
    if expired(held) {
        return Err(Ended::Expired);
    }
    match withdrawn_now(app, held).await {
        Some(ended) => Err(ended),
        None => Ok(()),
    }
}

/// Whether an announced change ends `held`.
fn ends(event: &Event, held: Held) -> Option<Ended> {
    match (event, held.actor) {
        (
            Event::AccessRevoked {
                application_id,
                api_key_id,
            },
            Actor::ApiKey {
                key_id,
                application_id: mine,
                ..
            }
            | Actor::EndUser {
                key_id,
                application_id: mine,
                ..
            },
        ) if *application_id == mine && api_key_id.is_none_or(|k| k == key_id) => {
            Some(Ended::Revoked)
        }
        (
            Event::SessionsEnded {
                user_id,
                session_id,
            },
            Actor::User { user_id: me },
        ) if *user_id == me && session_id.is_none_or(|s| Some(s) == held.session_id) => {
            Some(Ended::SignedOut)
        }
        _ => None,
    }
}

/// What the database says now; a database that cannot answer leaves the connection open.
async fn withdrawn_now(app: &App, held: Held) -> Option<Ended> {
    let mut conn = app.pool.get().await.ok()?;
    match held.actor {
        Actor::User { user_id } => {
            let session_id = held.session_id?;
            let live = sessions::is_live(&mut conn, user_id, session_id).await;
            (!live.unwrap_or(true)).then_some(Ended::SignedOut)
        }
        Actor::ApiKey { key_id, .. } | Actor::EndUser { key_id, .. } => {
            let live = api_keys::is_live(&mut conn, key_id).await;
            (!live.unwrap_or(true)).then_some(Ended::Revoked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_session_ends_only_its_own_sockets() {
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (session, other_session) = (Uuid::new_v4(), Uuid::new_v4());
        let held = Held {
            actor: Actor::User { user_id: user },
            expires_at: None,
            session_id: Some(session),
        };
        let ended = |user_id, session_id| {
            ends(
                &Event::SessionsEnded {
                    user_id,
                    session_id,
                },
                held,
            )
        };
        assert_eq!(ended(user, Some(session)), Some(Ended::SignedOut));
        assert_eq!(ended(user, None), Some(Ended::SignedOut), "every session");
        assert_eq!(ended(user, Some(other_session)), None);
        assert_eq!(ended(other, None), None);
        let revoked = Event::AccessRevoked {
            application_id: Uuid::new_v4(),
            api_key_id: None,
        };
        assert_eq!(ends(&revoked, held), None, "a builder holds no key");
    }

    #[test]
    fn a_revoked_key_ends_its_end_users_too() {
        let (key_id, application_id) = (Uuid::new_v4(), Uuid::new_v4());
        let held = Held {
            actor: Actor::EndUser {
                key_id,
                application_id,
                workspace_id: Uuid::new_v4(),
                end_user_id: Uuid::new_v4(),
            },
            expires_at: None,
            session_id: None,
        };
        let revoked = |application_id, api_key_id| {
            ends(
                &Event::AccessRevoked {
                    application_id,
                    api_key_id,
                },
                held,
            )
        };
        assert_eq!(revoked(application_id, Some(key_id)), Some(Ended::Revoked));
        assert_eq!(revoked(application_id, None), Some(Ended::Revoked));
        assert_eq!(revoked(application_id, Some(Uuid::new_v4())), None);
        assert_eq!(revoked(Uuid::new_v4(), None), None);
    }
}
