//! LLM nodes: one streamed call of a model, its tokens into the reply when an ANSWER
//! references it.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{NodeContext, NodeOutput, text};
use crate::engine::reply::Reply;
use crate::engine::template::Vars;
use crate::llm::provider::{self, ProviderAccess, ResolvedModel};
use crate::llm::usage::UsageLedger;
use crate::llm::{ChatMessage, ChatRequest, Usage};

pub async fn run(
    ctx: &NodeContext<'_>,
    index: usize,
    config: &Value,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    let (system, prompt, messages) = conversation(ctx, config, vars)?;
    let resolved = model(ctx, config).await?;
    let request = ChatRequest {
        model: resolved.model.clone(),
        messages,
        temperature: config.get("temperature").and_then(Value::as_f64),
        max_tokens: config
            .get("maxTokens")
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32),
        ..ChatRequest::default()
    };
    let mut into_reply = IntoReply::new(ctx, index, vars);
    let mut reply_text = String::new();
    let mut unfinished = Unfinished::new(ctx, &resolved, &request);
    let usage = resolved
        .client
        .stream_chat(&request, |piece| {
            reply_text.push_str(piece);
            unfinished.completion_chars += piece.chars().count();
            into_reply.text(piece);
        })
        .await;
    unfinished.done = true;
    let usage = usage.map_err(|e| e.to_string())?;
    record_usage(ctx, &resolved, usage).await;
    Ok(NodeOutput {
        inputs: Some(json!({ "model": resolved.model, "system": system, "prompt": prompt })),
        outputs: json!({
            "text": reply_text,
            "usage": usage_json(usage),
        }),
        usage: Some(usage),
        model: Some((resolved.provider_name, resolved.model)),
        ..NodeOutput::default()
    })
}

pub(super) fn usage_json(usage: Usage) -> Value {
    json!({
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    })
}

/// The system prompt and prompt rendered, and the messages to send: the system prompt,
/// the conversation's earlier turns with `memory`, the prompt.
pub(super) fn conversation(
    ctx: &NodeContext<'_>,
    config: &Value,
    vars: &Vars,
) -> Result<(String, String, Vec<ChatMessage>), String> {
    let system = vars.render(text(config, "systemPrompt"))?;
    let prompt = vars.render(text(config, "prompt"))?;
    let mut messages = Vec::new();
    if !system.trim().is_empty() {
        messages.push(ChatMessage::new("system", system.clone()));
    }
    if config.get("memory").and_then(Value::as_bool) == Some(true) {
        messages.extend(ctx.history.iter().cloned());
    }
    messages.push(ChatMessage::new("user", prompt.clone()));
    Ok((system, prompt, messages))
}

/// The node's provider and model (`providerId`, `model`), from the run's workspace.
pub(super) async fn model(ctx: &NodeContext<'_>, config: &Value) -> Result<ResolvedModel, String> {
    let provider_id = Uuid::parse_str(text(config, "providerId"))
        .map_err(|_| "config.providerId is not a UUID".to_string())?;
    let access = ProviderAccess {
        encryption_key: &ctx.app.config.encryption_key,
        http: ctx.http.clone(),
        outbound: &ctx.app.config.outbound,
        echo_pace: ctx.config.echo_pace,
    };
    let mut conn = ctx.app.engine.pool.get().await.map_err(|e| {
        tracing::error!(error = %e, "no database connection for a model node");
        "the database is unavailable".to_string()
    })?;
    provider::resolve(
        &mut conn,
        &access,
        ctx.workspace_id,
        provider_id,
        Some(text(config, "model")),
    )
    .await
    .map_err(|e| match e {
        crate::error::AppError::Internal(_) => "the model provider cannot be used".to_string(),
        other => other.to_string(),
    })
}

/// Adds a call's tokens to its provider's count, once written (a failure is logged).
pub(super) async fn record_usage(ctx: &NodeContext<'_>, resolved: &ResolvedModel, usage: Usage) {
    ctx.app
        .engine
        .usage
        .counted(resolved.provider_id, &resolved.model, usage)
        .await;
}

/// Where a model node's text goes in the reply: when an ANSWER streams this node, the first
/// piece claims the reply (one node per run) after the ANSWER's text before it.
pub(super) struct IntoReply<'a> {
    ctx: &'a NodeContext<'a>,
    index: usize,
    vars: &'a Vars,
    prefix: Option<&'a str>,
    mine: Option<bool>,
}

impl<'a> IntoReply<'a> {
    pub(super) fn new(ctx: &'a NodeContext<'a>, index: usize, vars: &'a Vars) -> IntoReply<'a> {
        let prefix = ctx
            .streamable
            .iter()
            .find(|(node, _)| *node == index)
            .map(|(_, prefix)| prefix.as_str());
        IntoReply {
            ctx,
            index,
            vars,
            prefix,
            mine: None,
        }
    }

    /// The reply, when this node streams into it.
    pub(super) fn reply(&mut self) -> Option<&'a Reply> {
        let (Some(reply), Some(prefix)) = (self.ctx.reply, self.prefix) else {
            return None;
        };
        let mine = *self.mine.get_or_insert_with(|| {
            let mut owner = self.ctx.streaming.lock().unwrap_or_else(|p| p.into_inner());
            match *owner {
                None => {
                    *owner = Some(self.index);
                    reply.delta(&self.vars.render(prefix).unwrap_or_default());
                    true
                }
                Some(other) => other == self.index,
            }
        });
        mine.then_some(reply)
    }

    pub(super) fn text(&mut self, piece: &str) {
        if let Some(reply) = self.reply() {
            reply.delta(piece);
        }
    }
}

/// The tokens of a reply cut off by a stop (its future dropped mid-stream): the provider
/// generated them, so they count against its quota (estimated, about four characters a
/// token, as no usage arrived).
pub(super) struct Unfinished<'a> {
    ledger: &'a UsageLedger,
    provider_id: Uuid,
    model: String,
    prompt_chars: usize,
    pub(super) completion_chars: usize,
    pub(super) done: bool,
}

impl<'a> Unfinished<'a> {
    pub(super) fn new(
        ctx: &NodeContext<'a>,
        resolved: &ResolvedModel,
        request: &ChatRequest,
    ) -> Unfinished<'a> {
        Unfinished {
            ledger: &ctx.app.engine.usage,
            provider_id: resolved.provider_id,
            model: resolved.model.clone(),
            prompt_chars: request
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .sum(),
            completion_chars: 0,
            done: false,
        }
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.done || self.completion_chars == 0 {
            return;
        }
        let prompt_tokens = i32::try_from(self.prompt_chars.div_ceil(4)).unwrap_or(i32::MAX);
        let completion_tokens =
            i32::try_from(self.completion_chars.div_ceil(4)).unwrap_or(i32::MAX);
        let usage = crate::llm::Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        };
        self.ledger.count(self.provider_id, &self.model, usage);
    }
}
