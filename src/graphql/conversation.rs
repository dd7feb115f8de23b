//! Conversations, messages, end users, feedback and annotations in GraphQL (the read side;
//! messages are written by the chat pipeline).

use async_graphql::{
    Context, InputObject, InputType, Json, Lookahead, Object, Result, SelectionField,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::application::ApplicationObject;
use super::context::{ContextExt, conn};
use super::conversation_row::{ConversationWithEndUser, brief_enough};
use super::enums::{
    AnnotationType, ConversationStatus, FeedbackRating, MessageRole, MessageStatus, parse,
};
use super::execution::ExecutionRecordObject;
use super::lists::{ListFilter, ListName};
use super::loaders::*;
use super::loaders::{ExecutionRecordById, ListRow};
use super::message_page::{message_cursor, messages_of_page};
use super::pages::{child_page, child_rows, count_totals};
use super::pagination::{Conn, Cursor, Page, PageArgs, Totals, connection};
use super::plain::{Plain, plain_list, plain_object, stored};
use super::tenancy::UserProfileObject;
use super::tool_call::ToolCallObject;
use crate::conversation::{annotations, service};
use crate::db::models::{Conversation, EndUser, Message, MessageAnnotation, MessageFeedback};

/// A conversation; with its end user when the statement that read it joined them.
pub struct ConversationObject(pub Conversation, Option<Option<EndUserObject>>);

impl ConversationObject {
    pub fn of(conversation: Conversation) -> ConversationObject {
        ConversationObject(conversation, None)
    }

    /// A conversation whose end user (or lack of one) was read with it.
    pub fn with_end_user(conversation: Conversation, end_user: Option<EndUser>) -> Self {
        ConversationObject(conversation, Some(end_user.map(EndUserObject)))
    }
}

crate::plain_fields!(ConversationObject, |c| {
    "id" => c.0.id,
    "title" => c.0.title,
    "status" => stored::<ConversationStatus>(&c.0.status),
    "summary" => c.0.summary,
    "messageCount" => c.0.message_count,
    "createdAt" => c.0.created_at,
    "updatedAt" => c.0.updated_at,
}, relations |selection| {
    "endUser" => match &c.1 {
        Some(Some(end_user)) => plain_object(end_user, selection),
        Some(None) => Some(async_graphql::Value::Null),
        None => None,
    },
});

#[Object(name = "Conversation")]
impl ConversationObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn status(&self) -> Result<ConversationStatus> {
        Ok(parse(&self.0.status)?)
    }
    async fn summary(&self) -> Option<&str> {
        self.0.summary.as_deref()
    }
    async fn message_count(&self) -> i32 {
        self.0.message_count
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0.metadata.clone())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn application(&self, ctx: &Context<'_>) -> Result<Option<ApplicationObject>> {
        Ok(ctx
            .loader()?
            .load_one(ApplicationById(self.0.application_id))
            .await?
            .map(ApplicationObject))
    }
    async fn end_user(&self, ctx: &Context<'_>) -> Result<Option<Plain<EndUserObject>>> {
        if let Some(joined) = &self.1 {
            return Ok(joined.clone().map(Plain));
        }
        let Some(id) = self.0.end_user_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(EndUserById(id))
            .await?
            .map(|u| Plain(EndUserObject(u))))
    }
    /// The messages, newest first.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<Plain<MessageObject>>> {
        let page = PageArgs::new(first, after, last, before).page()?;
        // Kept by the chat pipeline: no count query needed.
        let totals = Totals::known(i64::from(self.0.message_count));
        let rows = messages_of_page(ctx, self.0.id, page).await?;
        Ok(connection(
            &page,
            rows,
            |(m, _)| message_cursor(m),
            |(m, f)| Plain(MessageObject::with_feedbacks(m, f)),
            totals,
        ))
    }
}

/// Whether the selection of a page (`look`) selects `field` of its nodes.
pub fn selection_shows(look: &Lookahead<'_>, field: &str) -> bool {
    look.field("edges").field("node").field(field).exists()
        || look.field("nodes").field(field).exists()
}

/// A message; with its feedback when the statement that read it joined it.
pub struct MessageObject(pub Message, Option<Vec<MessageFeedbackObject>>);

impl MessageObject {
    pub fn of(message: Message) -> MessageObject {
        MessageObject(message, None)
    }

    /// A message whose feedback (oldest first) was read with it.
    pub fn with_feedbacks(message: Message, feedbacks: Option<Vec<MessageFeedback>>) -> Self {
        let feedbacks = feedbacks.map(|f| f.into_iter().map(MessageFeedbackObject).collect());
        MessageObject(message, feedbacks)
    }
}

crate::plain_fields!(MessageObject, |m| {
    "id" => m.0.id,
    "sequenceNumber" => m.0.sequence_number,
    "role" => stored::<MessageRole>(&m.0.role),
    "content" => m.0.content,
    "query" => m.0.query,
    "answer" => m.0.answer,
    "modelProvider" => m.0.model_provider,
    "modelName" => m.0.model_name,
    "promptTokens" => m.0.prompt_tokens,
    "completionTokens" => m.0.completion_tokens,
    "totalTokens" => m.0.total_tokens,
    "latency" => m.0.latency,
    "status" => stored::<MessageStatus>(&m.0.status),
    "error" => m.0.error,
    "createdAt" => m.0.created_at,
    "updatedAt" => m.0.updated_at,
    "executionId" => m.0.execution_id,
}, relations |selection| {
    "feedbacks" => plain_list(m.1.as_ref()?, selection),
});

#[Object(name = "Message")]
impl MessageObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The position in the conversation: 1, 2, 3...
    async fn sequence_number(&self) -> i32 {
        self.0.sequence_number
    }
    async fn role(&self) -> Result<MessageRole> {
        Ok(parse(&self.0.role)?)
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn query(&self) -> Option<&str> {
        self.0.query.as_deref()
    }
    async fn answer(&self) -> Option<&str> {
        self.0.answer.as_deref()
    }
    async fn inputs(&self) -> Json<Value> {
        Json(self.0.inputs.clone())
    }
    async fn outputs(&self) -> Option<Json<Value>> {
        self.0.outputs.clone().map(Json)
    }
    async fn model_provider(&self) -> Option<&str> {
        self.0.model_provider.as_deref()
    }
    async fn model_name(&self) -> Option<&str> {
        self.0.model_name.as_deref()
    }
    async fn prompt_tokens(&self) -> i32 {
        self.0.prompt_tokens
    }
    async fn completion_tokens(&self) -> i32 {
        self.0.completion_tokens
    }
    async fn total_tokens(&self) -> i32 {
        self.0.total_tokens
    }
    /// Seconds from the query to the finished reply.
    async fn latency(&self) -> Option<f64> {
        self.0.latency
    }
    async fn status(&self) -> Result<MessageStatus> {
        Ok(parse(&self.0.status)?)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0.metadata.clone())
    }
    /// The function calls an agent made for this reply, in order, with their results.
    async fn tool_calls(&self) -> Vec<ToolCallObject> {
        ToolCallObject::all_of(&self.0.tool_calls)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn execution_id(&self) -> Option<Uuid> {
        self.0.execution_id
    }
    /// The run that produced this reply (builders only; null for API keys and end users).
    async fn execution(&self, ctx: &Context<'_>) -> Result<Option<ExecutionRecordObject>> {
        let Some(id) = self.0.execution_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(ExecutionRecordById(id))
            .await?
            .map(ExecutionRecordObject))
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Result<Option<ConversationObject>> {
        Ok(ctx
            .loader()?
            .load_one(ConversationById(self.0.conversation_id))
            .await?
            .map(ConversationObject::of))
    }
    /// End users' likes and dislikes of this message.
    async fn feedbacks(&self, ctx: &Context<'_>) -> Result<Vec<Plain<MessageFeedbackObject>>> {
        if let Some(joined) = &self.1 {
            return Ok(joined.iter().cloned().map(Plain).collect());
        }
        let found = ctx
            .loader()?
            .load_one(FeedbacksOfMessage(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(|f| Plain(MessageFeedbackObject(f)))
            .collect())
    }
    /// The segments of knowledge bases this reply was given, in order.
    async fn retriever_resources(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::knowledge::RetrieverResourceObject>> {
        super::knowledge::resources_of_message(ctx, self.0.id).await
    }
    /// Builders' annotations of this message.
    async fn annotations(&self, ctx: &Context<'_>) -> Result<Vec<MessageAnnotationObject>> {
        let found = ctx
            .loader()?
            .load_one(AnnotationsOfMessage(self.0.id))
            .await?;
        Ok(found
            .unwrap_or_default()
            .into_iter()
            .map(MessageAnnotationObject)
            .collect())
    }
}

/// Someone using a published application.
#[derive(Clone)]
pub struct EndUserObject(pub EndUser);

crate::plain_fields!(EndUserObject, |u| {
    "id" => u.0.id,
    "sessionId" => u.0.session_id,
    "externalUserId" => u.0.external_user_id,
    "name" => u.0.name,
    "email" => u.0.email,
    "phone" => u.0.phone,
    "avatarUrl" => u.0.avatar_url,
    "isAnonymous" => u.0.is_anonymous,
    "lastActiveAt" => u.0.last_active_at,
    "createdAt" => u.0.created_at,
});

#[Object(name = "EndUser")]
impl EndUserObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn session_id(&self) -> Option<&str> {
        self.0.session_id.as_deref()
    }
    /// The id the application's own system knows this user by.
    async fn external_user_id(&self) -> Option<&str> {
        self.0.external_user_id.as_deref()
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }
    async fn metadata(&self) -> Json<Value> {
        Json(self.0.metadata.clone())
    }
    async fn is_anonymous(&self) -> bool {
        self.0.is_anonymous
    }
    async fn last_active_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_active_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(Clone)]
pub struct MessageFeedbackObject(pub MessageFeedback);

crate::plain_fields!(MessageFeedbackObject, |f| {
    "id" => f.0.id,
    "rating" => stored::<FeedbackRating>(&f.0.rating),
    "content" => f.0.content,
    "createdAt" => f.0.created_at,
    "messageId" => f.0.message_id,
});

#[Object(name = "MessageFeedback")]
impl MessageFeedbackObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn rating(&self) -> Result<FeedbackRating> {
        Ok(parse(&self.0.rating)?)
    }
    async fn content(&self) -> Option<&str> {
        self.0.content.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn message_id(&self) -> Uuid {
        self.0.message_id
    }
    async fn end_user(&self, ctx: &Context<'_>) -> Result<Option<EndUserObject>> {
        Ok(ctx
            .loader()?
            .load_one(EndUserById(self.0.end_user_id))
            .await?
            .map(EndUserObject))
    }
}

pub struct MessageAnnotationObject(pub MessageAnnotation);

#[Object(name = "MessageAnnotation")]
impl MessageAnnotationObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The question the annotation answers.
    async fn question(&self) -> Option<&str> {
        self.0.question.as_deref()
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn annotation_type(&self) -> Result<AnnotationType> {
        Ok(parse(&self.0.annotation_type)?)
    }
    /// How often it answered in place of the model.
    async fn hit_count(&self) -> i32 {
        self.0.hit_count
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The reply it was written on; null when written from a question and answer alone.
    async fn message_id(&self) -> Option<Uuid> {
        self.0.message_id
    }
    async fn annotated_by(&self, ctx: &Context<'_>) -> Result<Option<UserProfileObject>> {
        let Some(id) = self.0.annotated_by else {
            return Ok(None);
        };
        Ok(ctx
            .loader()?
            .load_one(UserProfileById(id))
            .await?
            .map(Into::into))
    }
}

#[derive(InputObject, Default)]
pub struct ConversationFilter {
    /// Part of the title, any case.
    name_contains: Option<String>,
    status: Option<ConversationStatus>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    /// One end user's conversations (the id of their EndUser row).
    end_user_id: Option<Uuid>,
}

#[derive(InputObject, Default)]
pub struct EndUserFilter {
    name_contains: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

/// The list filter of a page of conversations.
pub fn conversation_filter(filter: Option<ConversationFilter>) -> ListFilter {
    let f = filter.unwrap_or_default();
    ListFilter {
        name_contains: f.name_contains,
        status: f.status.map(|s| match s {
            ConversationStatus::Active => "ACTIVE".to_string(),
            ConversationStatus::Archived => "ARCHIVED".to_string(),
        }),
        created_after: f.created_after,
        created_before: f.created_before,
        end_user_id: f.end_user_id,
        ..ListFilter::default()
    }
}

/// The page of a workspace's conversations its selection asks for, and whether it asks for
/// their `totalCount`, when it asks for one (`conversations` once, without directives)
/// whose arguments read; otherwise `None`, and the list's own resolver reads the page (and
/// reports what is wrong with it).
pub enum AskedConversations {
    Plain(PageOf<Conversation>),
    WithEndUser(PageOf<ConversationWithEndUser<false>>),
    BriefWithEndUser(PageOf<ConversationWithEndUser<true>>),
}

pub fn asked_conversations(
    workspace: &SelectionField<'_>,
    workspace_id: Uuid,
) -> Option<(AskedConversations, bool)> {
    let mut asked = workspace
        .selection_set()
        .filter(|field| field.name() == "conversations");
    let field = asked.next()?;
    if asked.next().is_some() || !field.directives().ok()?.is_empty() {
        return None;
    }
    let mut args = PageArgs::new(None, None, None, None);
    let mut filter = None;
    for (name, value) in field.arguments().ok()? {
        let value = Some(value);
        match name.as_str() {
            "first" => args.first = InputType::parse(value).ok()?,
            "last" => args.last = InputType::parse(value).ok()?,
            "after" => args.after = InputType::parse(value).ok()?,
            "before" => args.before = InputType::parse(value).ok()?,
            "filter" => filter = InputType::parse(value).ok()?,
            _ => return None,
        }
    }
    let page = args.page().ok()?;
    let filter = conversation_filter(filter);
    let list = ListName::WorkspaceConversations;
    let look = Lookahead::from(field);
    let asked = if !selection_shows(&look, "endUser") {
        AskedConversations::Plain(PageOf::new(list, workspace_id, page, filter))
    } else if brief_enough(&look) {
        AskedConversations::BriefWithEndUser(PageOf::new(list, workspace_id, page, filter))
    } else {
        AskedConversations::WithEndUser(PageOf::new(list, workspace_id, page, filter))
    };
    Some((asked, look.field("totalCount").exists()))
}

/// Conversations of a workspace or of an application, most recently active first.
pub async fn conversations_of(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    args: PageArgs,
    filter: Option<ConversationFilter>,
) -> Result<Conn<Plain<ConversationObject>>> {
    let page = args.page()?;
    let filter = conversation_filter(filter);
    let look = ctx.look_ahead();
    if !selection_shows(&look, "endUser") {
        return child_page(ctx, list, parent, page, filter, |c| {
            Plain(ConversationObject::of(c))
        })
        .await;
    }
    if brief_enough(&look) {
        with_end_users::<true>(ctx, list, parent, page, filter).await
    } else {
        with_end_users::<false>(ctx, list, parent, page, filter).await
    }
}

/// A page of conversations with their end users read in the page's statement (brief rows
/// when `BRIEF`).
async fn with_end_users<const BRIEF: bool>(
    ctx: &Context<'_>,
    list: ListName,
    parent: Uuid,
    page: Page,
    filter: ListFilter,
) -> Result<Conn<Plain<ConversationObject>>> {
    let rows: Vec<ConversationWithEndUser<BRIEF>> =
        child_rows(ctx, list, parent, page, filter.clone()).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(ConversationWithEndUser::into_parts)
        .collect();
    let totals = count_totals(ctx, list, parent, filter)?;
    Ok(connection(
        &page,
        rows,
        |(c, _)| c.cursor(),
        |(c, u)| Plain(ConversationObject::with_end_user(c, u)),
        totals,
    ))
}

/// `Workspace.endUsers`, newest first.
pub async fn workspace_end_users(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    args: PageArgs,
    filter: Option<EndUserFilter>,
) -> Result<Conn<EndUserObject>> {
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
        ListName::WorkspaceEndUsers,
        workspace_id,
        page,
        filter,
        EndUserObject,
    )
    .await
}

#[derive(InputObject)]
pub struct AnnotateMessageInput {
    message_id: Uuid,
    /// The better answer.
    content: String,
    #[graphql(default_with = "AnnotationType::Correction")]
    annotation_type: AnnotationType,
}

#[derive(InputObject)]
pub struct CreateAnnotationInput {
    application_id: Uuid,
    /// The question it answers.
    question: String,
    /// The answer.
    content: String,
    #[graphql(default_with = "AnnotationType::Correction")]
    annotation_type: AnnotationType,
}

#[derive(InputObject)]
pub struct UpdateAnnotationInput {
    id: Uuid,
    question: Option<String>,
    content: Option<String>,
    annotation_type: Option<AnnotationType>,
}

#[derive(InputObject)]
pub struct RenameConversationInput {
    conversation_id: Uuid,
    title: String,
}

#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// A conversation the caller can see, or null.
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<Option<ConversationObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(ConversationById(id))
            .await?
            .map(ConversationObject::of))
    }

    /// The conversations of one end user of an application, most recently active first.
    /// With the application's API key `endUserId` is required; with an end-user token it is
    /// its own (omitted, or the same); builders who can read the application name anyone.
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn end_user_conversations(
        &self,
        ctx: &Context<'_>,
        application_id: Uuid,
        end_user_id: Option<String>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Conn<Plain<ConversationObject>>> {
        let actor = ctx.actor()?;
        let page = PageArgs::new(first, after, last, before).page()?;
        let mut conn = conn(ctx.app()?).await?;
        let end_user = crate::conversation::lookup::end_user_for_listing(
            &mut conn,
            actor,
            application_id,
            end_user_id.as_deref(),
        )
        .await?;
        drop(conn);
        let cursor = |c: &Conversation| Cursor::at(c.updated_at, c.id);
        let Some(end_user) = end_user else {
            return Ok(connection(
                &page,
                Vec::new(),
                cursor,
                |c| Plain(ConversationObject::of(c)),
                Totals::known(0),
            ));
        };
        let filter = ListFilter {
            application_id: Some(application_id),
            ..ListFilter::default()
        };
        child_page(
            ctx,
            ListName::EndUserConversations,
            end_user.id,
            page,
            filter,
            |c| Plain(ConversationObject::of(c)),
        )
        .await
    }

    /// A message the caller can see, or null.
    async fn message(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<MessageObject>> {
        ctx.actor()?;
        Ok(ctx
            .loader()?
            .load_one(MessageById(id))
            .await?
            .map(MessageObject::of))
    }
}

#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Renames a conversation: builders (EDITOR and up), the application's API key, or its
    /// end user.
    async fn rename_conversation(
        &self,
        ctx: &Context<'_>,
        input: RenameConversationInput,
    ) -> Result<ConversationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let renamed = service::rename_conversation(
            &mut conn,
            actor,
            &ctx.client(),
            input.conversation_id,
            &input.title,
        )
        .await?;
        Ok(ConversationObject::of(renamed))
    }

    /// Archives a conversation (status ARCHIVED): builders (EDITOR and up), the
    /// application's API key, or its end user.
    async fn archive_conversation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<ConversationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let archived = service::archive_conversation(&mut conn, actor, &ctx.client(), id).await?;
        Ok(ConversationObject::of(archived))
    }

    /// Takes a conversation out of the archive (status ACTIVE) so it can be continued: the
    /// same callers as `archiveConversation`.
    async fn unarchive_conversation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<ConversationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let restored = service::unarchive_conversation(&mut conn, actor, &ctx.client(), id).await?;
        Ok(ConversationObject::of(restored))
    }

    /// Annotates a reply with a better answer (EDITOR and up).
    async fn annotate_message(
        &self,
        ctx: &Context<'_>,
        input: AnnotateMessageInput,
    ) -> Result<MessageAnnotationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let annotation = annotations::annotate_message(
            &mut conn,
            actor,
            &ctx.client(),
            input.message_id,
            &input.content,
            input.annotation_type.as_str(),
        )
        .await?;
        Ok(MessageAnnotationObject(annotation))
    }

    /// Writes an annotation from a question and answer alone, no message needed (EDITOR and
    /// up): it answers matching questions when the application's annotation reply is on.
    async fn create_annotation(
        &self,
        ctx: &Context<'_>,
        input: CreateAnnotationInput,
    ) -> Result<MessageAnnotationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let annotation = annotations::create_annotation(
            &mut conn,
            actor,
            &ctx.client(),
            input.application_id,
            &input.question,
            &input.content,
            input.annotation_type.as_str(),
        )
        .await?;
        Ok(MessageAnnotationObject(annotation))
    }

    /// Changes an annotation's question, answer or type (EDITOR and up); omitted fields stay.
    async fn update_annotation(
        &self,
        ctx: &Context<'_>,
        input: UpdateAnnotationInput,
    ) -> Result<MessageAnnotationObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let changes = annotations::AnnotationChanges {
            question: input.question,
            content: input.content,
            annotation_type: input.annotation_type.map(|t| t.as_str()),
        };
        let annotation =
            annotations::update_annotation(&mut conn, actor, &ctx.client(), input.id, changes)
                .await?;
        Ok(MessageAnnotationObject(annotation))
    }

    /// Deletes an annotation (EDITOR and up): it no longer answers questions.
    async fn delete_annotation(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        Ok(annotations::delete_annotation(&mut conn, actor, &ctx.client(), id).await?)
    }

    /// Deletes a conversation (builders EDITOR and up, the application's API key, or its end
    /// user): it disappears from lists and lookups.
    async fn delete_conversation(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        service::delete_conversation(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
