//! Plugins in GraphQL: the catalogue, and installations per workspace.

use async_graphql::{Context, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::enums::{PluginType, parse};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs, contains_pattern, positioned};
use super::tenancy::{UserProfileObject, WorkspaceObject};
use crate::db::models::{InstalledPlugin, Plugin};
use crate::db::schema::plugins;
use crate::error::AppError;
use crate::plugin::catalogue::{Tool, ToolParameter};
use crate::plugin::{ConfigField, FieldType, Manifest, config, installations};

/// Whether an installation is switched on.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstalledPluginStatus {
    Enabled,
    Disabled,
}

pub struct PluginObject(pub Plugin);

#[Object(name = "Plugin")]
impl PluginObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The unique name, e.g. `http-request`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn version(&self) -> &str {
        &self.0.version
    }
    async fn author(&self) -> Option<&str> {
        self.0.author.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    async fn category(&self) -> Option<&str> {
        self.0.category.as_deref()
    }
    async fn plugin_type(&self) -> Result<PluginType> {
        Ok(parse(&self.0.plugin_type)?)
    }
    /// The settings an installation takes.
    async fn settings(&self) -> Result<Vec<PluginSettingObject>> {
        let manifest = Manifest::of(&self.0.manifest)?;
        Ok(manifest
            .config
            .into_iter()
            .map(PluginSettingObject)
            .collect())
    }
    /// What the plugin offers to workflows.
    async fn tools(&self) -> Result<Vec<PluginToolObject>> {
        let manifest = Manifest::of(&self.0.manifest)?;
        Ok(manifest.tools.into_iter().map(PluginToolObject).collect())
    }
    /// The whole manifest.
    async fn manifest(&self) -> Json<Value> {
        Json(self.0.manifest.clone())
    }
    async fn source_url(&self) -> Option<&str> {
        self.0.source_url.as_deref()
    }
    async fn documentation_url(&self) -> Option<&str> {
        self.0.documentation_url.as_deref()
    }
    /// In how many workspaces it is installed.
    async fn install_count(&self) -> i32 {
        self.0.install_count
    }
    async fn rating(&self) -> Option<f64> {
        self.0.rating
    }
    async fn is_verified(&self) -> bool {
        self.0.is_verified
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Its installation in a workspace of the caller's, or null.
    async fn installation(
        &self,
        ctx: &Context<'_>,
        workspace_id: Uuid,
    ) -> Result<Option<InstalledPluginObject>> {
        let key = InstallationOfPlugin {
            plugin: self.0.id,
            workspace: workspace_id,
        };
        Ok(ctx
            .loader()?
            .load_one(key)
            .await?
            .map(InstalledPluginObject))
    }
}

/// One setting of a plugin.
pub struct PluginSettingObject(ConfigField);

#[Object(name = "PluginSetting")]
impl PluginSettingObject {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    /// SECRET settings are stored encrypted and never returned.
    #[graphql(name = "type")]
    async fn setting_type(&self) -> FieldType {
        self.0.field_type
    }
    async fn required(&self) -> bool {
        self.0.required
    }
    #[graphql(name = "default")]
    async fn default_value(&self) -> Option<Json<Value>> {
        self.0.default.clone().map(Json)
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The choices of a SELECT.
    async fn options(&self) -> Option<&[String]> {
        self.0.options.as_deref()
    }
    async fn min(&self) -> Option<f64> {
        self.0.min
    }
    async fn max(&self) -> Option<f64> {
        self.0.max
    }
}

/// An operation a plugin offers.
pub struct PluginToolObject(Tool);

#[Object(name = "PluginTool")]
impl PluginToolObject {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn parameters(&self) -> Vec<PluginToolParameterObject> {
        self.0
            .parameters
            .iter()
            .cloned()
            .map(PluginToolParameterObject)
            .collect()
    }
    async fn outputs(&self) -> &[String] {
        &self.0.outputs
    }
}

pub struct PluginToolParameterObject(ToolParameter);

#[Object(name = "PluginToolParameter")]
impl PluginToolParameterObject {
    async fn name(&self) -> &str {
        &self.0.name
    }
    #[graphql(name = "type")]
    async fn parameter_type(&self) -> FieldType {
        self.0.field_type
    }
    async fn required(&self) -> bool {
        self.0.required
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn options(&self) -> Option<&[String]> {
        self.0.options.as_deref()
    }
}

pub struct InstalledPluginObject(pub InstalledPlugin);

impl InstalledPluginObject {
    async fn manifest(&self, ctx: &Context<'_>) -> Result<Manifest> {
        let plugin = ctx
            .loader()?
            .load_one(PluginById(self.0.plugin_id))
            .await?
            .ok_or_else(|| AppError::internal("an installation without its plugin"))?;
        Ok(Manifest::of(&plugin.manifest)?)
    }
}

#[Object(name = "InstalledPlugin")]
impl InstalledPluginObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn plugin(&self, ctx: &Context<'_>) -> Result<Option<PluginObject>> {
        Ok(ctx
            .loader()?
            .load_one(PluginById(self.0.plugin_id))
            .await?
            .map(PluginObject))
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?
            .map(WorkspaceObject))
    }
    /// The settings, without secrets.
    async fn config(&self, ctx: &Context<'_>) -> Result<Json<Value>> {
        let manifest = self.manifest(ctx).await?;
        Ok(Json(config::public_view(&manifest.config, &self.0.config)))
    }
    /// The secret settings that hold a value (their values are never returned).
    async fn configured_secrets(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let manifest = self.manifest(ctx).await?;
        Ok(config::secrets_set(&manifest.config, &self.0.config))
    }
    async fn is_enabled(&self) -> bool {
        self.0.is_enabled
    }
    async fn installed_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.installed_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    async fn installed_at(&self) -> DateTime<Utc> {
        self.0.installed_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject, Default)]
pub struct PluginFilter {
    name_contains: Option<String>,
    category: Option<String>,
    plugin_type: Option<PluginType>,
}

#[derive(InputObject, Default)]
pub struct InstalledPluginFilter {
    status: Option<InstalledPluginStatus>,
}

#[derive(InputObject)]
pub struct InstallPluginInput {
    workspace_id: Uuid,
    plugin_id: Uuid,
    /// The settings, checked against the plugin's `settings`.
    config: Option<Json<Value>>,
}

#[derive(InputObject)]
pub struct ConfigurePluginInput {
    installed_plugin_id: Uuid,
    /// All settings; a secret left out keeps its value, a secret given as null is removed.
    config: Json<Value>,
}

#[derive(InputObject)]
pub struct SetPluginEnabledInput {
    installed_plugin_id: Uuid,
    enabled: bool,
}

/// `Workspace.installedPlugins`, most recently installed first.
pub async fn workspace_installed_plugins(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<InstalledPluginFilter>,
) -> Result<Conn<InstalledPluginObject>> {
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        status: f
            .status
            .map(|s| (s == InstalledPluginStatus::Enabled).to_string()),
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspaceInstalledPlugins,
        workspace_id,
        page,
        filter,
        InstalledPluginObject,
    )
    .await
}

#[derive(Default)]
pub struct PluginQuery;

#[Object]
impl PluginQuery {
    /// The plugin catalogue: verified first, then by installs.
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn plugins(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PluginFilter>,
    ) -> Result<Conn<PluginObject>> {
        ctx.actor()?.user_id()?;
        let page = PageArgs::new(first, after, None, None).page()?;
        let filter = filter.unwrap_or_default();
        let mut conn = conn(ctx.app()?).await?;
        let build = || {
            let mut query = plugins::table
                .filter(plugins::is_active.eq(true))
                .into_boxed();
            if let Some(text) = &filter.name_contains {
                let pattern = contains_pattern(text);
                query = query.filter(
                    plugins::display_name
                        .ilike(pattern.clone())
                        .or(plugins::name.ilike(pattern)),
                );
            }
            if let Some(category) = &filter.category {
                query = query.filter(plugins::category.eq(category.clone()));
            }
            if let Some(plugin_type) = filter.plugin_type {
                query = query.filter(plugins::plugin_type.eq(plugin_type.as_str()));
            }
            query
        };
        let offset = page.offset();
        let rows: Vec<Plugin> = build()
            .order((
                plugins::is_verified.desc(),
                plugins::install_count.desc(),
                plugins::display_name.asc(),
                plugins::id.asc(),
            ))
            .offset(offset)
            .limit(page.size + 1)
            .select(Plugin::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let total: i64 = build()
            .count()
            .get_result(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(positioned(&page, rows, |r| r.id, PluginObject, total))
    }
}

#[derive(Default)]
pub struct PluginMutation;

#[Object]
impl PluginMutation {
    /// Installs a plugin in a workspace with its settings (EDITOR and up).
    async fn install_plugin(
        &self,
        ctx: &Context<'_>,
        input: InstallPluginInput,
    ) -> Result<InstalledPluginObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let given = input.config.map(|c| c.0).unwrap_or(Value::Null);
        let installed = installations::install(
            &mut conn,
            actor,
            &ctx.client(),
            &app.config.encryption_key,
            input.workspace_id,
            input.plugin_id,
            &given,
        )
        .await?;
        Ok(InstalledPluginObject(installed))
    }

    /// Replaces an installation's settings (EDITOR and up).
    async fn configure_plugin(
        &self,
        ctx: &Context<'_>,
        input: ConfigurePluginInput,
    ) -> Result<InstalledPluginObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let installed = installations::configure(
            &mut conn,
            actor,
            &ctx.client(),
            &app.config.encryption_key,
            input.installed_plugin_id,
            &input.config.0,
        )
        .await?;
        Ok(InstalledPluginObject(installed))
    }

    /// Switches an installation on or off (EDITOR and up).
    async fn set_plugin_enabled(
        &self,
        ctx: &Context<'_>,
        input: SetPluginEnabledInput,
    ) -> Result<InstalledPluginObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let installed = installations::set_enabled(
            &mut conn,
            actor,
            &ctx.client(),
            input.installed_plugin_id,
            input.enabled,
        )
        .await?;
        Ok(InstalledPluginObject(installed))
    }

    /// Uninstalls a plugin from a workspace with its settings (EDITOR and up).
    async fn uninstall_plugin(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        installations::uninstall(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
