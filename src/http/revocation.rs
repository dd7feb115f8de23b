//! When the rights a live connection opened with end: its API key revoked (or its
//! application deleted), on whichever instance that happened, or its end-user token expired.
//! WebSockets close with 4403 and SSE responses end then.

use std::future::pending;
use std::time::Duration;

use crate::app::App;
use crate::application::api_keys;
use crate::auth::Actor;
use crate::realtime::bus::Delivery;
use crate::realtime::events::Event;

/// Why a connection's rights ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
}

impl Ended {
    pub fn reason(self) -> &'static str {
        match self {
            Ended::Revoked => "the credential was revoked",
            Ended::Expired => "the token expired",
        }
    }
}

/// Resolves when `actor`'s rights end; never for a builder's access token (sessions of
/// builders are not followed here) unless `expires_at` is given.
pub async fn rights_end(app: &App, actor: Actor, expires_at: Option<i64>) -> Ended {
    let expiry = async {
        match expires_at {
            Some(at) => {
                let left = at.saturating_sub(chrono::Utc::now().timestamp()).max(0);
                tokio::time::sleep(Duration::from_secs(left.unsigned_abs())).await;
            }
            None => pending::<()>().await,
        }
    };
    tokio::select! {
        () = expiry => Ended::Expired,
        ended = revoked(app, actor) => ended,
    }
}

/// Resolves when the API key behind `actor` is revoked.
async fn revoked(app: &App, actor: Actor) -> Ended {
    let (Some(key_id), Some((application_id, _))) = (actor.api_key_id(), actor.application())
    else {
        return pending().await;
    };
    let channel = app.realtime.names().revocations();
    let mut revocations = app.realtime.bus.subscribe(&channel).await;
    // Revoked between the credential check and the subscription: nothing would announce it.
    if !key_stands(app, key_id).await {
        return Ended::Revoked;
    }
    loop {
        match revocations.recv().await {
            Ok(Delivery::Event(event)) => {
                if let Event::AccessRevoked {
                    application_id: revoked_app,
                    api_key_id,
                } = event.as_ref()
                    && *revoked_app == application_id
                    && api_key_id.is_none_or(|k| k == key_id)
                {
                    return Ended::Revoked;
                }
            }
            // Announcements may have been missed: ask the database.
            Ok(Delivery::Resync) | Err(crate::realtime::bus::Missed::Lagged) => {
                if !key_stands(app, key_id).await {
                    return Ended::Revoked;
                }
            }
            Err(crate::realtime::bus::Missed::Closed) => return pending().await,
        }
    }
}

/// Whether the key is live; a database that cannot answer leaves the connection open.
async fn key_stands(app: &App, key_id: uuid::Uuid) -> bool {
    let Ok(mut conn) = app.pool.get().await else {
        return true;
    };
    api_keys::is_live(&mut conn, key_id).await.unwrap_or(true)
}
