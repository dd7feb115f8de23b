//! The end-user side of a chat application: `sendMessage`, `stopMessage`,
//! `submitFeedback`, `createConversation`. Callable with the application's API key (naming
//! the end user with `endUserId`) or by a builder trying the application.

use async_graphql::{Context, InputObject, Json, Object, Result, SimpleObject};
use serde_json::Value;
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::conversation::{ConversationObject, MessageFeedbackObject, MessageObject};
use super::enums::FeedbackRating;
use super::execution::ExecutionRecordObject;
use crate::conversation::{feedback, send};

#[derive(InputObject)]
pub struct SendMessageInput {
    application_id: Uuid,
    /// The conversation to continue; omitted, a new one starts (titled by the question).
    conversation_id: Option<Uuid>,
    query: String,
    /// Values of the START node's inputs.
    inputs: Option<Json<Value>>,
    /// The caller's own id of its user (`end_users.external_user_id`); omitted, an anonymous
    /// end user (or, for a builder, the builder's own).
    end_user_id: Option<String>,
}

/// What `sendMessage` created; the reply streams on `messageStream(messageId:
/// assistantMessage.id)`.
#[derive(SimpleObject)]
pub struct SendMessagePayload {
    conversation: ConversationObject,
    user_message: MessageObject,
    /// PENDING until the reply is generated (COMPLETED at once when an annotation answered).
    assistant_message: MessageObject,
    /// The run producing the reply; null when an annotation answered.
    execution: Option<ExecutionRecordObject>,
}

#[derive(InputObject)]
pub struct SubmitFeedbackInput {
    message_id: Uuid,
    rating: FeedbackRating,
    content: Option<String>,
    /// The end user giving it; omitted, the conversation's own.
    end_user_id: Option<String>,
}

#[derive(InputObject)]
pub struct CreateConversationInput {
    application_id: Uuid,
    title: Option<String>,
    end_user_id: Option<String>,
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Sends an end user's message; returns before the reply is generated.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> Result<SendMessagePayload> {
        let actor = ctx.actor()?;
        let sent = send::send_message(
            ctx.app()?,
            actor,
            &ctx.client(),
            send::SendMessage {
                application_id: input.application_id,
                conversation_id: input.conversation_id,
                query: input.query,
                inputs: input.inputs.map(|j| j.0),
                end_user_id: input.end_user_id,
            },
        )
        .await?;
        Ok(SendMessagePayload {
            conversation: ConversationObject::of(sent.conversation),
            user_message: MessageObject::of(sent.user_message),
            assistant_message: MessageObject::of(sent.assistant_message),
            execution: sent.execution.map(ExecutionRecordObject),
        })
    }

    /// Stops a reply being generated, including the model's answer in flight; the reply
    /// keeps the text generated so far (STOPPED).
    async fn stop_message(&self, ctx: &Context<'_>, message_id: Uuid) -> Result<MessageObject> {
        let actor = ctx.actor()?;
        let message = send::stop_message(ctx.app()?, actor, &ctx.client(), message_id).await?;
        Ok(MessageObject::of(message))
    }

    /// An end user's like or dislike of a reply; giving it again replaces it.
    async fn submit_feedback(
        &self,
        ctx: &Context<'_>,
        input: SubmitFeedbackInput,
    ) -> Result<MessageFeedbackObject> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        let feedback = feedback::submit_feedback(
            &mut conn,
            actor,
            &ctx.client(),
            input.message_id,
            input.rating.as_str(),
            input.content.as_deref(),
            input.end_user_id.as_deref(),
        )
        .await?;
        Ok(MessageFeedbackObject(feedback))
    }

    /// Opens an empty conversation of a chat application.
    async fn create_conversation(
        &self,
        ctx: &Context<'_>,
        input: CreateConversationInput,
    ) -> Result<ConversationObject> {
        let actor = ctx.actor()?;
        let conversation = send::create_conversation(
            ctx.app()?,
            actor,
            &ctx.client(),
            input.application_id,
            input.title.as_deref(),
            input.end_user_id.as_deref(),
        )
        .await?;
        Ok(ConversationObject::of(conversation))
    }
}
