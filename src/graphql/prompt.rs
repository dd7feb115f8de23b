//! Prompt templates in GraphQL.

use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::tenancy::UserProfileObject;
use crate::db::models::{PromptTemplate, PromptTemplateVersion};
use crate::error::AppError;
use crate::prompt::service;

pub struct PromptTemplateObject(pub PromptTemplate);

#[Object(name = "PromptTemplate")]
impl PromptTemplateObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Every version, newest first.
    async fn versions(&self, ctx: &Context<'_>) -> Result<Vec<PromptTemplateVersionObject>> {
        let found = ctx
            .loader()?
            .load_one(VersionsOfPromptTemplate(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(PromptTemplateVersionObject)
            .collect())
    }
    /// The version in use.
    async fn current_version(&self, ctx: &Context<'_>) -> Result<PromptTemplateVersionObject> {
        let found = ctx
            .loader()?
            .load_one(VersionsOfPromptTemplate(self.0.id))
            .await?;
        let current = found.unwrap_or_default().into_iter().find(|v| v.is_current);
        Ok(PromptTemplateVersionObject(
            current.ok_or(AppError::NotFound("prompt template version"))?,
        ))
    }
}

pub struct PromptTemplateVersionObject(pub PromptTemplateVersion);

#[Object(name = "PromptTemplateVersion")]
impl PromptTemplateVersionObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// 1, 2, 3... per template.
    async fn version_number(&self) -> i32 {
        self.0.version_number
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    /// The `{{variables}}` the content uses.
    async fn variables(&self) -> Vec<String> {
        serde_json::from_value(self.0.variables.clone()).unwrap_or_default()
    }
    async fn is_current(&self) -> bool {
        self.0.is_current
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
}

#[derive(InputObject)]
pub struct CreatePromptTemplateInput {
    workspace_id: Uuid,
    name: String,
    description: Option<String>,
    /// The first version's text, with `{{variables}}`.
    content: String,
}

#[derive(InputObject)]
pub struct CreatePromptTemplateVersionInput {
    prompt_template_id: Uuid,
    content: String,
}

#[derive(InputObject, Default)]
pub struct PromptTemplateFilter {
    name_contains: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// `Workspace.promptTemplates`, newest first.
pub async fn workspace_prompt_templates(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<PromptTemplateFilter>,
) -> Result<Conn<PromptTemplateObject>> {
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        name_contains: f.name_contains,
        status: None,
        created_after: f.created_after,
        created_before: f.created_before,
        application_id: None,
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspacePromptTemplates,
        workspace_id,
        page,
        filter,
        PromptTemplateObject,
    )
    .await
}

#[derive(Default)]
pub struct PromptMutation;

#[Object]
impl PromptMutation {
    /// Creates a prompt template with its first version (EDITOR and up).
    async fn create_prompt_template(
        &self,
        ctx: &Context<'_>,
        input: CreatePromptTemplateInput,
    ) -> Result<PromptTemplateObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let template = service::create_prompt_template(
            &mut conn,
            actor,
            &ctx.client(),
            input.workspace_id,
            &input.name,
            input.description.as_deref(),
            &input.content,
        )
        .await?;
        Ok(PromptTemplateObject(template))
    }

    /// Adds a version, which becomes the current one.
    async fn create_prompt_template_version(
        &self,
        ctx: &Context<'_>,
        input: CreatePromptTemplateVersionInput,
    ) -> Result<PromptTemplateVersionObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let version = service::create_prompt_template_version(
            &mut conn,
            actor,
            &ctx.client(),
            input.prompt_template_id,
            &input.content,
        )
        .await?;
        Ok(PromptTemplateVersionObject(version))
    }
}
