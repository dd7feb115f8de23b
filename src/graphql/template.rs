//! Workflow templates in GraphQL.

use async_graphql::{Context, Enum, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::loaders::UserProfileById;
use super::pagination::{Conn, PageArgs, contains_pattern, positioned};
use super::tenancy::UserProfileObject;
use super::workflow::WorkflowObject;
use crate::db::models::WorkflowTemplate;
use crate::db::schema::workflow_templates;
use crate::error::AppError;
use crate::workflow::templates;

/// Where a template comes from, as the caller sees it.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSource {
    /// Made by the caller.
    Own,
    /// Shipped with Weft.
    Official,
    /// Shared publicly by another user.
    Community,
}

pub struct WorkflowTemplateObject {
    row: WorkflowTemplate,
    viewer: Uuid,
}

#[Object(name = "WorkflowTemplate")]
impl WorkflowTemplateObject {
    async fn id(&self) -> Uuid {
        self.row.id
    }
    async fn name(&self) -> &str {
        &self.row.name
    }
    async fn description(&self) -> Option<&str> {
        self.row.description.as_deref()
    }
    async fn category(&self) -> Option<&str> {
        self.row.category.as_deref()
    }
    /// The graph a workflow made from this template starts with.
    async fn graph(&self) -> Json<Value> {
        Json(self.row.graph.clone())
    }
    async fn is_official(&self) -> bool {
        self.row.is_official
    }
    async fn is_public(&self) -> bool {
        self.row.is_public
    }
    /// How many workflows were made from it.
    async fn usage_count(&self) -> i32 {
        self.row.usage_count
    }
    async fn source(&self) -> TemplateSource {
        if self.row.created_by == Some(self.viewer) {
            TemplateSource::Own
        } else if self.row.is_official {
            TemplateSource::Official
        } else {
            TemplateSource::Community
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// The author's profile, for the author only (others see `authorName`): a public
    /// template does not give its author's email to every user.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.row.created_by.filter(|id| *id == self.viewer) else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    /// Who made it: a name only ("Weft" for official templates, null when the author's
    /// account is gone).
    async fn author_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if self.row.is_official {
            return Ok(Some("Weft".into()));
        }
        let Some(id) = self.row.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(|profile| profile.name))
    }
}

#[derive(InputObject, Default)]
pub struct WorkflowTemplateFilter {
    source: Option<TemplateSource>,
    name_contains: Option<String>,
    category: Option<String>,
}

#[derive(InputObject)]
pub struct CreateWorkflowFromTemplateInput {
    template_id: Uuid,
    workspace_id: Uuid,
    name: String,
}

#[derive(InputObject)]
pub struct SaveWorkflowAsTemplateInput {
    workflow_id: Uuid,
    name: String,
    description: Option<String>,
    #[graphql(default)]
    is_public: bool,
}

#[derive(Default)]
pub struct TemplateQuery;

#[Object]
impl TemplateQuery {
    /// The templates the caller may use: official first, then by usage.
    #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn workflow_templates(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WorkflowTemplateFilter>,
    ) -> Result<Conn<WorkflowTemplateObject>> {
        let viewer = ctx.actor()?.user_id()?;
        let page = PageArgs::new(first, after, None, None).page()?;
        let filter = filter.unwrap_or_default();
        let mut conn = conn(ctx.app()?).await?;
        let build = || {
            let mut query = workflow_templates::table
                .filter(templates::usable_by(viewer))
                .into_boxed();
            match filter.source {
                Some(TemplateSource::Own) => {
                    query = query.filter(workflow_templates::created_by.eq(viewer))
                }
                Some(TemplateSource::Official) => {
                    query = query.filter(workflow_templates::is_official.eq(true))
                }
                Some(TemplateSource::Community) => {
                    query = query
                        .filter(workflow_templates::is_official.eq(false))
                        .filter(
                            workflow_templates::created_by
                                .ne(viewer)
                                .or(workflow_templates::created_by.is_null()),
                        )
                }
                None => {}
            }
            if let Some(text) = &filter.name_contains {
                query = query.filter(workflow_templates::name.ilike(contains_pattern(text)));
            }
            if let Some(category) = &filter.category {
                query = query.filter(workflow_templates::category.eq(category.clone()));
            }
            query
        };
        let offset = page.offset();
        let rows: Vec<WorkflowTemplate> = build()
            .order((
                workflow_templates::is_official.desc(),
                workflow_templates::usage_count.desc(),
                workflow_templates::created_at.desc(),
                workflow_templates::id.desc(),
            ))
            .offset(offset)
            .limit(page.size + 1)
            .select(WorkflowTemplate::as_select())
            .load(&mut conn)
            .await
            .map_err(AppError::from)?;
        let total: i64 = build()
            .count()
            .get_result(&mut conn)
            .await
            .map_err(AppError::from)?;
        Ok(positioned(
            &page,
            rows,
            |r| r.id,
            |row| WorkflowTemplateObject { row, viewer },
            total,
        ))
    }
}

#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// Creates a workflow from a template in a workspace (EDITOR and up).
    async fn create_workflow_from_template(
        &self,
        ctx: &Context<'_>,
        input: CreateWorkflowFromTemplateInput,
    ) -> Result<WorkflowObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let workflow = templates::create_workflow_from_template(
            &mut conn,
            actor,
            &ctx.client(),
            input.template_id,
            input.workspace_id,
            &input.name,
        )
        .await?;
        Ok(WorkflowObject(workflow))
    }

    /// Saves a workflow's current graph as a template of the caller's.
    async fn save_workflow_as_template(
        &self,
        ctx: &Context<'_>,
        input: SaveWorkflowAsTemplateInput,
    ) -> Result<WorkflowTemplateObject> {
        let actor = ctx.actor()?;
        let viewer = actor.user_id()?;
        let mut conn = conn(ctx.app()?).await?;
        let row = templates::save_workflow_as_template(
            &mut conn,
            actor,
            &ctx.client(),
            input.workflow_id,
            &input.name,
            input.description.as_deref(),
            input.is_public,
        )
        .await?;
        Ok(WorkflowTemplateObject { row, viewer })
    }
}
