//! Applications and their API keys in GraphQL.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::analytics::{ApplicationStatsBucketObject, StatsInterval, application_stats, range};
use super::context::{ContextExt, conn};
use super::conversation::{
    ConversationFilter, ConversationObject, EndUserObject, MessageAnnotationObject,
    MessageFeedbackObject, conversations_of,
};
use super::dataset::DatasetObject;
use super::enums::{ApplicationMode, ApplicationStatus, FeedbackRating, parse};
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::pages::child_page;
use super::pagination::{Conn, PageArgs};
use super::plain::Plain;
use super::tenancy::{UserProfileObject, WorkspaceObject};
use super::workflow::WorkflowObject;
use crate::app::App;
use crate::application::service::{self, ApplicationChanges, NewApplication};
use crate::application::{api_keys, end_user_tokens};
use crate::db::models::{ApiKey, Application};
use crate::realtime::events::Event;

pub struct ApplicationObject(pub Application);

/// How the application is built (workspace, workflow, datasets, keys, author) is for
/// builders: an API key or an end user reading its application gets FORBIDDEN there.
fn builders_only(ctx: &Context<'_>) -> Result<()> {
    ctx.actor()?.user_id()?;
    Ok(())
}

#[Object(name = "Application")]
impl ApplicationObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn icon(&self) -> Option<&str> {
        self.0.icon.as_deref()
    }
    async fn mode(&self) -> Result<ApplicationMode> {
        Ok(parse(&self.0.mode)?)
    }
    async fn status(&self) -> Result<ApplicationStatus> {
        Ok(parse(&self.0.status)?)
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    /// Shown to end users before their first message.
    async fn opening_statement(&self) -> Option<&str> {
        self.0.opening_statement.as_deref()
    }
    async fn suggested_questions(&self) -> Vec<String> {
        self.0
            .suggested_questions
            .as_array()
            .map(|q| {
                q.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Whether an annotated answer replies to a matching question without the model.
    async fn annotation_reply_enabled(&self) -> bool {
        self.0.annotation_reply_enabled
    }
    async fn annotation_reply_threshold(&self) -> f64 {
        f64::from(self.0.annotation_reply_threshold)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceObject>> {
        builders_only(ctx)?;
        Ok(ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?
            .map(WorkspaceObject))
    }
    async fn workflow(&self, ctx: &Context<'_>) -> Result<Option<WorkflowObject>> {
        builders_only(ctx)?;
        let Some(id) = self.0.workflow_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(WorkflowById(id))
            .await?
            .map(WorkflowObject))
    }
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        builders_only(ctx)?;
        let Some(id) = self.0.created_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
    /// The datasets the application retrieves from.
    async fn datasets(&self, ctx: &Context<'_>) -> Result<Vec<DatasetObject>> {
        builders_only(ctx)?;
        let found = ctx
            .loader()?
            .load_one(DatasetsOfApplication(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(DatasetObject)
            .collect())
    }
    /// The application's API keys, newest first (revoked ones included).
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyObject>> {
        builders_only(ctx)?;
        let found = ctx
            .loader()?
            .load_one(ApiKeysOfApplication(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(ApiKeyObject)
            .collect())
    }
    /// Conversations with this application, most recently active first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ConversationFilter>,
    ) -> Result<Conn<Plain<ConversationObject>>> {
        let args = PageArgs::new(first, after, last, before);
        conversations_of(
            ctx,
            ListName::ApplicationConversations,
            self.0.id,
            args,
            filter,
        )
        .await
    }
    /// The feedback end users gave its replies, newest first (builders only).
    /// The application's annotations (written on replies or from questions and answers),
    /// newest first. Builders only.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn annotations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<MessageAnnotationObject>> {
        builders_only(ctx)?;
        let page = PageArgs::new(first, after, last, before).page()?;
        child_page(
            ctx,
            ListName::ApplicationAnnotations,
            self.0.id,
            page,
            ListFilter::default(),
            MessageAnnotationObject,
        )
        .await
    }
    /// Activity per hour, day or week from `from` to `to` in `timeZone` (IANA): one bucket per
    /// interval, empty ones with zeros, at most 1,000. Builders (MEMBER and up) only.
    #[graphql(complexity = "50")]
    async fn stats(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default_with = "Some(StatsInterval::Day)")] interval: Option<StatsInterval>,
        #[graphql(default_with = "Some(\"UTC\".to_string())")] time_zone: Option<String>,
    ) -> Result<Vec<ApplicationStatsBucketObject>> {
        application_stats(
            ctx,
            self.0.workspace_id,
            self.0.id,
            range(from, to, interval, time_zone),
        )
        .await
    }
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn feedbacks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<FeedbackFilter>,
    ) -> Result<Conn<MessageFeedbackObject>> {
        builders_only(ctx)?;
        let filter = ListFilter {
            status: filter
                .and_then(|f| f.rating)
                .map(|r| r.as_str().to_string()),
            ..ListFilter::default()
        };
        let page = PageArgs::new(first, after, last, before).page()?;
        child_page(
            ctx,
            ListName::ApplicationFeedbacks,
            self.0.id,
            page,
            filter,
            MessageFeedbackObject,
        )
        .await
    }
}

/// Which feedback a log shows.
#[derive(InputObject, Default)]
pub struct FeedbackFilter {
    rating: Option<FeedbackRating>,
}

/// An API key; its secret is shown only when it is created.
pub struct ApiKeyObject(pub ApiKey);

#[Object(name = "ApiKey")]
impl ApiKeyObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The first characters of the key, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn application(&self, ctx: &Context<'_>) -> Result<Option<ApplicationObject>> {
        Ok(ctx
            .loader()?
            .load_one(ApplicationById(self.0.application_id))
            .await?
            .map(ApplicationObject))
    }
}

#[derive(SimpleObject)]
pub struct ApiKeyPayload {
    api_key: ApiKeyObject,
    /// `app-...`: send as `Authorization: Bearer <secret>`. Shown once; only its hash is kept.
    secret: String,
}

#[derive(InputObject)]
pub struct CreateApplicationInput {
    workspace_id: Uuid,
    name: String,
    description: Option<String>,
    mode: ApplicationMode,
    workflow_id: Option<Uuid>,
    #[graphql(default)]
    dataset_ids: Vec<Uuid>,
}

#[derive(InputObject)]
pub struct UpdateApplicationInput {
    application_id: Uuid,
    name: Option<String>,
    description: Option<String>,
    workflow_id: Option<Uuid>,
    opening_statement: Option<String>,
    suggested_questions: Option<Vec<String>>,
    annotation_reply_enabled: Option<bool>,
    annotation_reply_threshold: Option<f64>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    application_id: Uuid,
    name: String,
}

#[derive(InputObject, Default)]
pub struct ApplicationFilter {
    name_contains: Option<String>,
    status: Option<ApplicationStatus>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// `Workspace.applications`, newest first.
pub async fn workspace_applications(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<ApplicationFilter>,
) -> Result<Conn<ApplicationObject>> {
    let page = args.page()?;
    let f = filter.unwrap_or_default();
    let filter = ListFilter {
        name_contains: f.name_contains,
        status: f.status.map(|s| match s {
            ApplicationStatus::Draft => "DRAFT".to_string(),
            ApplicationStatus::Published => "PUBLISHED".to_string(),
        }),
        created_after: f.created_after,
        created_before: f.created_before,
        application_id: None,
        ..ListFilter::default()
    };
    child_page(
        ctx,
        ListName::WorkspaceApplications,
        workspace_id,
        page,
        filter,
        ApplicationObject,
    )
    .await
}

/// Tells every instance that a key (or every key of an application) no longer stands.
async fn announce_revocation(app: &App, application_id: Uuid, api_key_id: Option<Uuid>) {
    app.realtime
        .rights_changed(Event::AccessRevoked {
            application_id,
            api_key_id,
        })
        .await;
}

#[derive(InputObject)]
pub struct CreateEndUserTokenInput {
    application_id: Uuid,
    /// The application's own id of its user (`EndUser.externalUserId`).
    end_user_id: String,
    /// How long the token is valid: 3600 when omitted, 60 to 86400.
    ttl_seconds: Option<i32>,
}

/// A minted end-user token.
#[derive(SimpleObject)]
pub struct EndUserTokenPayload {
    /// `Authorization: Bearer <token>` over HTTP, in `connection_init` over WebSocket.
    token: String,
    expires_at: DateTime<Utc>,
    end_user: EndUserObject,
}

#[derive(Default)]
pub struct ApplicationQuery;

#[Object]
impl ApplicationQuery {
    /// An application the caller can see, or null. An API key, or an end user of the
    /// application, sees its own application's public settings.
    async fn application(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<ApplicationObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(ApplicationById(id))
            .await?
            .map(ApplicationObject))
    }
}

#[derive(Default)]
pub struct ApplicationMutation;

#[Object]
impl ApplicationMutation {
    /// Creates an application (EDITOR and up), optionally linked to a workflow and datasets.
    async fn create_application(
        &self,
        ctx: &Context<'_>,
        input: CreateApplicationInput,
    ) -> Result<ApplicationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let new = NewApplication {
            workspace_id: input.workspace_id,
            name: input.name,
            description: input.description,
            mode: input.mode.as_str(),
            workflow_id: input.workflow_id,
            dataset_ids: input.dataset_ids,
        };
        Ok(ApplicationObject(
            service::create_application(&mut conn, actor, &ctx.client(), new).await?,
        ))
    }

    /// Changes an application's settings; omitted fields stay as they are.
    async fn update_application(
        &self,
        ctx: &Context<'_>,
        input: UpdateApplicationInput,
    ) -> Result<ApplicationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let changes = ApplicationChanges {
            name: input.name,
            description: input.description,
            workflow_id: input.workflow_id,
            opening_statement: input.opening_statement,
            suggested_questions: input.suggested_questions,
            annotation_reply_enabled: input.annotation_reply_enabled,
            annotation_reply_threshold: input.annotation_reply_threshold,
        };
        let updated = service::update_application(
            &mut conn,
            actor,
            &ctx.client(),
            input.application_id,
            changes,
        )
        .await?;
        Ok(ApplicationObject(updated))
    }

    /// Publishes an application (it needs a workflow).
    async fn publish_application(&self, ctx: &Context<'_>, id: Uuid) -> Result<ApplicationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        Ok(ApplicationObject(
            service::publish_application(&mut conn, actor, &ctx.client(), id).await?,
        ))
    }

    /// Deletes an application; its API keys and their end-user tokens stop working.
    async fn delete_application(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        service::delete_application(&mut conn, actor, &ctx.client(), id).await?;
        drop(conn);
        announce_revocation(app, id, None).await;
        Ok(true)
    }

    /// Creates an API key (OWNER and ADMIN); the secret is in the answer and nowhere else.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<ApiKeyPayload> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let (key, secret) = api_keys::create_api_key(
            &mut conn,
            actor,
            &ctx.client(),
            input.application_id,
            &input.name,
        )
        .await?;
        Ok(ApiKeyPayload {
            api_key: ApiKeyObject(key),
            secret,
        })
    }

    /// Revokes an API key at once: requests with it or its end-user tokens are refused,
    /// and live connections opened with them close.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: Uuid) -> Result<ApiKeyObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let key = api_keys::revoke_api_key(&mut conn, actor, &ctx.client(), id).await?;
        drop(conn);
        announce_revocation(app, key.application_id, Some(key.id)).await;
        Ok(ApiKeyObject(key))
    }

    /// A token for one end user of the application, for a browser to hold instead of the
    /// API key. Only with that application's API key (a customer's backend).
    async fn create_end_user_token(
        &self,
        ctx: &Context<'_>,
        input: CreateEndUserTokenInput,
    ) -> Result<EndUserTokenPayload> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let minted = end_user_tokens::create_end_user_token(
            &mut conn,
            &app.auth.signer,
            actor,
            &ctx.client(),
            input.application_id,
            &input.end_user_id,
            input.ttl_seconds.map(i64::from),
        )
        .await?;
        Ok(EndUserTokenPayload {
            token: minted.token,
            expires_at: minted.expires_at,
            end_user: EndUserObject(minted.end_user),
        })
    }
}
