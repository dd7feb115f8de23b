//! The end user a chat request speaks for: named by the caller (`endUserId`, stored as
//! `external_user_id`, one row per workspace), the conversation's own, a builder trying
//! the application (`builder:<user id>`), or a new anonymous one bound to a session id.

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::Actor;
use crate::db::models::EndUser;
use crate::db::schema::end_users;
use crate::db::statement::KeepPrepared;
use crate::error::AppResult;
use crate::validate;

/// The end user `external_id` of the workspace, created on first use.
pub async fn named(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    external_id: &str,
) -> AppResult<EndUser> {
    let external_id = validate::name("endUserId", external_id, 255)?;
    Ok(diesel::insert_into(end_users::table)
        .values((
            end_users::workspace_id.eq(workspace_id),
            end_users::external_user_id.eq(&external_id),
            end_users::is_anonymous.eq(false),
            end_users::last_active_at.eq(Some(chrono::Utc::now())),
        ))
        .on_conflict((end_users::workspace_id, end_users::external_user_id))
        .do_update()
        .set(end_users::last_active_at.eq(excluded(end_users::last_active_at)))
        .returning(EndUser::as_returning())
        .prepared()
        .get_result(conn)
        .await?)
}

/// A new anonymous end user with a session id of its own.
pub async fn anonymous(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> AppResult<EndUser> {
    Ok(diesel::insert_into(end_users::table)
        .values((
            end_users::workspace_id.eq(workspace_id),
            end_users::session_id.eq(Uuid::new_v4().to_string()),
            end_users::is_anonymous.eq(true),
            end_users::last_active_at.eq(Some(chrono::Utc::now())),
        ))
        .returning(EndUser::as_returning())
        .prepared()
        .get_result(conn)
        .await?)
}

/// The end user of a new conversation or message: the one named, else a builder's own, else
/// a new anonymous one.
pub async fn for_caller(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workspace_id: Uuid,
    end_user_id: Option<&str>,
) -> AppResult<EndUser> {
    match (end_user_id, actor) {
        (
            _,
            Actor::EndUser {
                end_user_id: own, ..
            },
        ) => token_holder(conn, own, end_user_id).await,
        (Some(id), _) => named(conn, workspace_id, id).await,
        (None, Actor::User { user_id }) => {
            named(conn, workspace_id, &format!("builder:{user_id}")).await
        }
        (None, Actor::ApiKey { .. }) => anonymous(conn, workspace_id).await,
    }
}

/// The end user holding an end-user token; an `endUserId` given with it must name that same
/// end user (anyone else is FORBIDDEN: a token speaks for its own end user only).
pub async fn token_holder(
    conn: &mut AsyncPgConnection,
    own: Uuid,
    named: Option<&str>,
) -> AppResult<EndUser> {
    let holder: EndUser = end_users::table
        .find(own)
        .select(EndUser::as_select())
        .first(conn)
        .await?;
    if let Some(named) = named
        && holder.external_user_id.as_deref() != Some(named.trim())
    {
        return Err(crate::error::AppError::Forbidden);
    }
    Ok(holder)
}

/// The end user `external_id` of the workspace, if it exists.
pub async fn find(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    external_id: &str,
) -> AppResult<Option<EndUser>> {
    Ok(end_users::table
        .filter(end_users::workspace_id.eq(workspace_id))
        .filter(end_users::external_user_id.eq(external_id))
        .select(EndUser::as_select())
        .first(conn)
        .await
        .optional()?)
}
