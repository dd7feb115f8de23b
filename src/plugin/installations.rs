//! Installing, configuring, switching on and off and uninstalling plugins in a workspace
//! (EDITOR and up).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::catalogue::Manifest;
use super::config;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{InstalledPlugin, Plugin};
use crate::db::schema::{installed_plugins, plugins};
use crate::error::{AppError, AppResult};
use crate::secrets::Secret;

/// The names of the settings given (never their values: some are secrets).
fn given_names(given: &Value) -> Vec<String> {
    given
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

pub async fn install(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    key: &Secret,
    workspace_id: Uuid,
    plugin_id: Uuid,
    given: &Value,
) -> AppResult<InstalledPlugin> {
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        let plugin: Plugin = plugins::table
            .find(plugin_id)
            .filter(plugins::is_active.eq(true))
            .select(Plugin::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("plugin"))?;
        let manifest = Manifest::of(&plugin.manifest)?;
        // The id is chosen here: sealed settings are bound to it.
        let id = Uuid::new_v4();
        let stored = config::prepare(&manifest.config, given, None, key, id)?;
        let installed: InstalledPlugin = diesel::insert_into(installed_plugins::table)
            .values((
                installed_plugins::id.eq(id),
                installed_plugins::workspace_id.eq(workspace_id),
                installed_plugins::plugin_id.eq(plugin.id),
                installed_plugins::config.eq(&stored),
                installed_plugins::installed_by.eq(actor.user_id().ok()),
            ))
            .on_conflict_do_nothing()
            .returning(InstalledPlugin::as_returning())
            .get_result(conn)
            .await
            .optional()?
            .ok_or_else(|| {
                AppError::Conflict(format!(
                    "{} is already installed in this workspace",
                    plugin.display_name
                ))
            })?;
        diesel::update(plugins::table.find(plugin.id))
            .set(plugins::install_count.eq(plugins::install_count + 1))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "plugin.install",
                resource_type: "installed_plugin",
                resource_id: Some(installed.id),
                metadata: json!({ "plugin": plugin.name, "settings": given_names(given) }),
            },
        )
        .await?;
        Ok(installed)
    })
    .await
}

/// An installation the caller can see, locked, with its plugin; Build permission checked.
async fn installation_for_building(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<(InstalledPlugin, Plugin)> {
    let user_id = actor.user_id()?;
    let installed: InstalledPlugin = installed_plugins::table
        .find(id)
        .filter(installed_plugins::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(InstalledPlugin::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("installed plugin"))?;
    authorize_workspace(conn, actor, installed.workspace_id, Action::Build).await?;
    let plugin: Plugin = plugins::table
        .find(installed.plugin_id)
        .select(Plugin::as_select())
        .first(conn)
        .await?;
    Ok((installed, plugin))
}

/// Replaces the settings; secrets left out stay as they are, secrets given as null go.
pub async fn configure(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    key: &Secret,
    id: Uuid,
    given: &Value,
) -> AppResult<InstalledPlugin> {
    conn.transaction(async |conn| {
        let (installed, plugin) = installation_for_building(conn, actor, id).await?;
        let manifest = Manifest::of(&plugin.manifest)?;
        let stored = config::prepare(
            &manifest.config,
            given,
            Some(&installed.config),
            key,
            installed.id,
        )?;
        let updated: InstalledPlugin = diesel::update(installed_plugins::table.find(id))
            .set(installed_plugins::config.eq(&stored))
            .returning(InstalledPlugin::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(installed.workspace_id),
                action: "plugin.configure",
                resource_type: "installed_plugin",
                resource_id: Some(id),
                metadata: json!({ "plugin": plugin.name, "settings": given_names(given) }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Switches an installation on or off.
pub async fn set_enabled(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    enabled: bool,
) -> AppResult<InstalledPlugin> {
    conn.transaction(async |conn| {
        let (installed, plugin) = installation_for_building(conn, actor, id).await?;
        if installed.is_enabled == enabled {
            return Ok(installed);
        }
        let updated: InstalledPlugin = diesel::update(installed_plugins::table.find(id))
            .set(installed_plugins::is_enabled.eq(enabled))
            .returning(InstalledPlugin::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(installed.workspace_id),
                action: if enabled {
                    "plugin.enable"
                } else {
                    "plugin.disable"
                },
                resource_type: "installed_plugin",
                resource_id: Some(id),
                metadata: json!({ "plugin": plugin.name }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Removes an installation with its settings.
pub async fn uninstall(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let (installed, plugin) = installation_for_building(conn, actor, id).await?;
        diesel::delete(installed_plugins::table.find(id))
            .execute(conn)
            .await?;
        diesel::update(plugins::table.find(plugin.id))
            .set(
                plugins::install_count.eq(diesel::dsl::sql::<diesel::sql_types::Integer>(
                    "GREATEST(install_count - 1, 0)",
                )),
            )
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(installed.workspace_id),
                action: "plugin.uninstall",
                resource_type: "installed_plugin",
                resource_id: Some(id),
                metadata: json!({ "plugin": plugin.name }),
            },
        )
        .await?;
        Ok(())
    })
    .await
}
