//! The chat pipeline's front: `sendMessage` stores the question and a PENDING reply and
//! enqueues the application's workflow (or answers from a matching annotation without a
//! model), all in one transaction, and returns before the reply is generated; `stopMessage`
//! stops the reply's run; `createConversation` opens an empty conversation.

use diesel::prelude::*;
use diesel::sql_types::{Float4, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::end_users;
use super::lookup::{visible_conversation, visible_message};
use crate::app::App;
use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{Application, Conversation, EndUser, ExecutionRecord, Message};
use crate::db::schema::{
    applications, conversations, execution_records, message_annotations, messages,
};
use crate::db::statement::KeepPrepared;
use crate::error::{AppError, AppResult};
use crate::realtime::events::MessageEvent;
use crate::workflow::executions::is_finished;
use crate::workflow::publishing::{self, Edition};
use crate::workflow::run::{self as runs, NewRun};

/// The longest question accepted, in characters.
const MAX_QUERY: usize = 20_000;
/// The longest conversation title made from a first question.
const TITLE_LENGTH: usize = 60;

pub struct SendMessage {
    pub application_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub query: String,
    pub inputs: Option<Value>,
    pub end_user_id: Option<String>,
}

/// What `sendMessage` created.
pub struct Sent {
    pub conversation: Conversation,
    pub user_message: Message,
    pub assistant_message: Message,
    /// The run producing the reply; none when an annotation answered.
    pub execution: Option<ExecutionRecord>,
}

/// The application the actor may chat with: a builder with RUN in its workspace (drafts
/// too), or its own API key (published only).
async fn chat_application(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    application_id: Uuid,
) -> AppResult<Application> {
    let query = applications::table
        .find(application_id)
        .filter(applications::deleted_at.is_null())
        .select(Application::as_select())
        .into_boxed();
    let query = match actor {
        Actor::User { user_id } => {
            query.filter(applications::workspace_id.eq_any(visible_workspace_ids(user_id)))
        }
        Actor::ApiKey {
            application_id: own,
            ..
        }
        | Actor::EndUser {
            application_id: own,
            ..
        } => query.filter(applications::id.eq(own)),
    };
    let application: Application = query
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("application"))?;
    match actor {
        Actor::User { .. } => {
            authorize_workspace(conn, actor, application.workspace_id, Action::Run).await?;
        }
        Actor::ApiKey { .. } | Actor::EndUser { .. } if application.status != "PUBLISHED" => {
            return Err(AppError::Conflict(
                "the application is not published".into(),
            ));
        }
        Actor::ApiKey { .. } | Actor::EndUser { .. } => {}
    }
    if application.mode != "CHAT" {
        return Err(AppError::bad_input(
            "applicationId",
            "a WORKFLOW application runs with runWorkflow, not sendMessage",
        ));
    }
    Ok(application)
}

/// A conversation's title from its first question.
fn title_of(query: &str) -> String {
    let line = query
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > TITLE_LENGTH {
        let cut: String = line.chars().take(TITLE_LENGTH - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        line.to_string()
    }
}

/// The conversation a message goes to: the one named (the caller's, of this application, of
/// this end user when one is named), locked for numbering; or a new one.
async fn conversation_for(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    application: &Application,
    conversation_id: Option<Uuid>,
    end_user_id: Option<&str>,
    title: &str,
) -> AppResult<(Conversation, EndUser)> {
    if let Some(id) = conversation_id {
        let conversation = visible_conversation(conn, actor, id).await?;
        if conversation.application_id != application.id {
            return Err(AppError::NotFound("conversation"));
        }
        let end_user = match (end_user_id, conversation.end_user_id) {
            // A token's end user, whose conversation this is (checked by the lookup).
            (named, _) if matches!(actor, Actor::EndUser { .. }) => {
                end_users::for_caller(conn, actor, application.workspace_id, named).await?
            }
            (Some(named), owner) => {
                let end_user = end_users::named(conn, application.workspace_id, named).await?;
                if owner.is_some_and(|o| o != end_user.id) {
                    return Err(AppError::NotFound("conversation"));
                }
                end_user
            }
            (None, Some(owner)) => {
                crate::db::schema::end_users::table
                    .find(owner)
                    .select(EndUser::as_select())
                    .first(conn)
                    .await?
            }
            (None, None) => {
                end_users::for_caller(conn, actor, application.workspace_id, None).await?
            }
        };
        let locked: Conversation = conversations::table
            .find(conversation.id)
            .select(Conversation::as_select())
            .for_update()
            .first(conn)
            .await?;
        if locked.status == "ARCHIVED" {
            return Err(AppError::Conflict(
                "the conversation is archived: unarchiveConversation to continue it".into(),
            ));
        }
        return Ok((locked, end_user));
    }
    let end_user =
        end_users::for_caller(conn, actor, application.workspace_id, end_user_id).await?;
    let conversation = diesel::insert_into(conversations::table)
        .values((
            conversations::workspace_id.eq(application.workspace_id),
            conversations::application_id.eq(application.id),
            conversations::end_user_id.eq(Some(end_user.id)),
            conversations::title.eq(crate::validate::truncate(title, 500)),
        ))
        .returning(Conversation::as_returning())
        .prepared()
        .get_result(conn)
        .await?;
    Ok((conversation, end_user))
}

/// An annotated question close enough to `query` (trigram similarity at or above the
/// application's threshold): its id, answer and score.
#[derive(QueryableByName)]
struct AnnotationHit {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = Float4)]
    score: f32,
}

async fn matching_annotation(
    conn: &mut AsyncPgConnection,
    application: &Application,
    query: &str,
) -> AppResult<Option<AnnotationHit>> {
    if !application.annotation_reply_enabled {
        return Ok(None);
    }
    Ok(diesel::sql_query(
        "SELECT id, content, similarity(question, $2) AS score FROM message_annotations \
         WHERE application_id = $1 AND workspace_id = $3 AND question IS NOT NULL \
           AND similarity(question, $2) >= $4 \
         ORDER BY score DESC, created_at DESC LIMIT 1",
    )
    .bind::<SqlUuid, _>(application.id)
    .bind::<Text, _>(query)
    .bind::<SqlUuid, _>(application.workspace_id)
    .bind::<Float4, _>(application.annotation_reply_threshold)
    .prepared()
    .get_result(conn)
    .await
    .optional()?)
}

struct NewMessage<'a> {
    conversation: &'a Conversation,
    sequence_number: i32,
    role: &'static str,
    content: &'a str,
    query: &'a str,
    inputs: &'a Value,
    status: &'static str,
    metadata: Value,
}

async fn insert_message(conn: &mut AsyncPgConnection, m: NewMessage<'_>) -> AppResult<Message> {
    let answer = (m.role == "ASSISTANT" && m.status == "COMPLETED").then_some(m.content);
    Ok(diesel::insert_into(messages::table)
        .values((
            messages::workspace_id.eq(m.conversation.workspace_id),
            messages::conversation_id.eq(m.conversation.id),
            messages::application_id.eq(m.conversation.application_id),
            messages::sequence_number.eq(m.sequence_number),
            messages::role.eq(m.role),
            messages::content.eq(m.content),
            messages::query.eq(Some(m.query)),
            messages::answer.eq(answer),
            messages::inputs.eq(m.inputs),
            messages::status.eq(m.status),
            messages::metadata.eq(m.metadata),
            messages::latency.eq(answer.map(|_| 0.0)),
        ))
        .returning(Message::as_returning())
        .prepared()
        .get_result(conn)
        .await?)
}

/// `sendMessage`.
pub async fn send_message(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    input: SendMessage,
) -> AppResult<Sent> {
    let query = input.query.trim().to_string();
    if query.is_empty() {
        return Err(AppError::bad_input("query", "the question is empty"));
    }
    if query.chars().count() > MAX_QUERY {
        return Err(AppError::bad_input(
            "query",
            format!("the question is longer than {MAX_QUERY} characters"),
        ));
    }
    let mut conn = app.pool.get().await?;
    let application = chat_application(&mut conn, actor, input.application_id).await?;
    let workflow_id = application.workflow_id.ok_or_else(|| {
        AppError::Conflict("the application has no workflow to answer with".into())
    })?;
    let workflow = publishing::workflow_row(&mut conn, workflow_id).await?;
    let (version, graph) =
        publishing::version_to_run(&mut conn, &workflow, Edition::for_actor(actor)).await?;
    let inputs = runs::check_inputs(&graph, input.inputs)?;
    let annotation = matching_annotation(&mut conn, &application, &query).await?;
    if annotation.is_none() {
        crate::llm::provider::check_quotas(
            &mut conn,
            application.workspace_id,
            &runs::providers_of(&graph),
        )
        .await?;
    }
    let user_id = actor.user_id().ok();
    let sent = conn
        .transaction(async |conn| {
            let (conversation, end_user) = conversation_for(
                conn,
                actor,
                &application,
                input.conversation_id,
                input.end_user_id.as_deref(),
                &title_of(&query),
            )
            .await?;
            let last: Option<i32> = messages::table
                .filter(messages::conversation_id.eq(conversation.id))
                .select(diesel::dsl::max(messages::sequence_number))
                .first(conn)
                .await?;
            let next = last.unwrap_or(0) + 1;
            let user_message = insert_message(
                conn,
                NewMessage {
                    conversation: &conversation,
                    sequence_number: next,
                    role: "USER",
                    content: &query,
                    query: &query,
                    inputs: &inputs,
                    status: "COMPLETED",
                    metadata: json!({}),
                },
            )
            .await?;
            let (content, status, metadata) = match &annotation {
                Some(hit) => (
                    hit.content.as_str(),
                    "COMPLETED",
                    json!({ "annotationReply": { "annotationId": hit.id, "score": hit.score } }),
                ),
                None => ("", "PENDING", json!({})),
            };
            let mut assistant_message = insert_message(
                conn,
                NewMessage {
                    conversation: &conversation,
                    sequence_number: next + 1,
                    role: "ASSISTANT",
                    content,
                    query: &query,
                    inputs: &inputs,
                    status,
                    metadata,
                },
            )
            .await?;
            let execution = match &annotation {
                Some(hit) => {
                    diesel::update(message_annotations::table.find(hit.id))
                        .set(message_annotations::hit_count.eq(message_annotations::hit_count + 1))
                        .execute(conn)
                        .await?;
                    None
                }
                None => {
                    let execution = runs::enqueue(
                        conn,
                        NewRun {
                            workspace_id: application.workspace_id,
                            workflow_id,
                            version_id: version.id,
                            inputs: inputs.clone(),
                            user_id,
                            application_id: Some(application.id),
                            end_user_id: Some(end_user.id),
                            message_id: Some(assistant_message.id),
                            sys: json!({
                                "query": query,
                                "conversationId": conversation.id,
                                "endUserId": end_user.external_user_id.clone()
                                    .unwrap_or_else(|| end_user.id.to_string()),
                            }),
                        },
                    )
                    .await?;
                    assistant_message = diesel::update(messages::table.find(assistant_message.id))
                        .set(messages::execution_id.eq(Some(execution.id)))
                        .returning(Message::as_returning())
                        .prepared()
                        .get_result(conn)
                        .await?;
                    Some(execution)
                }
            };
            let conversation: Conversation =
                diesel::update(conversations::table.find(conversation.id))
                    .set((
                        conversations::message_count.eq(conversations::message_count + 2),
                        conversations::updated_at.eq(chrono::Utc::now()),
                    ))
                    .returning(Conversation::as_returning())
                    .prepared()
                    .get_result(conn)
                    .await?;
            audit::record(
                conn,
                actor,
                client,
                AuditEntry {
                    workspace_id: Some(application.workspace_id),
                    action: "message.send",
                    resource_type: "message",
                    resource_id: Some(assistant_message.id),
                    metadata: json!({
                        "conversationId": conversation.id,
                        "endUserId": end_user.id,
                        "annotationReply": annotation.is_some(),
                    }),
                },
            )
            .await?;
            Ok::<_, AppError>(Sent {
                conversation,
                user_message,
                assistant_message,
                execution,
            })
        })
        .await?;
    drop(conn);
    for message in [&sent.user_message, &sent.assistant_message] {
        if let Err(e) = app.realtime.message_changed(message).await {
            tracing::warn!(error = ?e, "cannot announce a message");
        }
    }
    match &sent.execution {
        Some(execution) => runs::announce_queued(app, execution).await,
        None => stream_stored_reply(app, &sent.assistant_message).await,
    }
    Ok(sent)
}

/// Streams a reply that is already stored (an annotation's): its words as deltas, then END.
async fn stream_stored_reply(app: &App, message: &Message) {
    let mut events: Vec<MessageEvent> = message
        .content
        .split_inclusive(' ')
        .map(|word| MessageEvent::delta(message.id, word))
        .collect();
    events.push(MessageEvent::end(message.clone()));
    for event in events {
        if let Err(e) = app.realtime.publish_message_event(event).await {
            tracing::warn!(message_id = %message.id, error = ?e, "cannot stream an annotation reply");
            return;
        }
    }
}

/// `stopMessage`: stops the run producing a reply; returns the message as it ended.
pub async fn stop_message(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    message_id: Uuid,
) -> AppResult<Message> {
    let mut conn = app.pool.get().await?;
    let message = visible_message(&mut conn, actor, message_id).await?;
    if matches!(actor, Actor::User { .. }) {
        authorize_workspace(&mut conn, actor, message.workspace_id, Action::Run).await?;
    }
    if message.role != "ASSISTANT" {
        return Err(AppError::bad_input(
            "messageId",
            "only a reply can be stopped",
        ));
    }
    let Some(execution_id) = message.execution_id else {
        return Ok(message);
    };
    if !matches!(message.status.as_str(), "PENDING" | "STREAMING") {
        return Ok(message);
    }
    let execution: ExecutionRecord = execution_records::table
        .find(execution_id)
        .filter(execution_records::workspace_id.eq(message.workspace_id))
        .select(ExecutionRecord::as_select())
        .first(&mut conn)
        .await?;
    drop(conn);
    if !is_finished(&execution.status) {
        runs::stop(app, actor, client, &execution).await?;
        runs::wait_for_end(app, execution.id).await?;
    }
    let mut conn = app.pool.get().await?;
    Ok(messages::table
        .find(message.id)
        .select(Message::as_select())
        .first(&mut conn)
        .await?)
}

/// `createConversation`: an empty conversation of an application for an end user.
pub async fn create_conversation(
    app: &App,
    actor: Actor,
    client: &ClientInfo,
    application_id: Uuid,
    title: Option<&str>,
    end_user_id: Option<&str>,
) -> AppResult<Conversation> {
    let title = match title {
        Some(t) => crate::validate::text("title", t.trim(), 500)?,
        None => String::new(),
    };
    let mut conn = app.pool.get().await?;
    let application = chat_application(&mut conn, actor, application_id).await?;
    conn.transaction(async |conn| {
        let (conversation, end_user) =
            conversation_for(conn, actor, &application, None, end_user_id, &title).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(application.workspace_id),
                action: "conversation.create",
                resource_type: "conversation",
                resource_id: Some(conversation.id),
                metadata: json!({ "applicationId": application.id, "endUserId": end_user.id }),
            },
        )
        .await?;
        Ok(conversation)
    })
    .await
}
