//! What each type of node does, given the variables of the run so far. A node returns its
//! outputs (and, for a CONDITION, the branch taken) or an error message.

use serde_json::{Value, json};
use std::sync::Mutex;
use uuid::Uuid;

use super::config::EngineConfig;
use super::reply::Reply;
use super::template::Vars;
use super::{condition, http_node};
use crate::app::App;
use crate::llm::ChatMessage;
use crate::llm::ChatRequest;
use crate::llm::provider::{self, ProviderAccess};
use crate::workflow::graph::{GraphNode, NodeType};

/// What a finished node produced.
#[derive(Debug, Default)]
pub struct NodeOutput {
    pub inputs: Option<Value>,
    pub outputs: Value,
    pub branch: Option<bool>,
    pub usage: Option<crate::llm::Usage>,
    /// The provider's name and the model, for LLM nodes.
    pub model: Option<(String, String)>,
}

/// What every node of one run shares.
pub struct NodeContext<'a> {
    pub app: &'a App,
    pub config: &'a EngineConfig,
    pub http: reqwest::Client,
    pub workspace_id: Uuid,
    /// The conversation's earlier turns, for LLM nodes with `memory`.
    pub history: &'a [ChatMessage],
    pub reply: Option<&'a Reply>,
    /// LLM nodes whose tokens may stream into the reply, with the ANSWER text before them.
    pub streamable: &'a [(usize, String)],
    /// The LLM node streaming into the reply (one per run).
    pub streaming: &'a Mutex<Option<usize>>,
}

fn text<'v>(config: &'v Value, field: &str) -> &'v str {
    config.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Runs node `index` with the variables it can see.
pub async fn run(
    ctx: &NodeContext<'_>,
    index: usize,
    node: &GraphNode,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    let config = &node.config;
    match node.node_type {
        NodeType::Start => Ok(NodeOutput {
            outputs: vars.lookup("start").cloned().unwrap_or_else(|| json!({})),
            ..NodeOutput::default()
        }),
        NodeType::Template => {
            let output = vars.render(text(config, "template"))?;
            Ok(NodeOutput {
                outputs: json!({ "output": output }),
                ..NodeOutput::default()
            })
        }
        NodeType::Answer => {
            let answer = vars.render(text(config, "answer"))?;
            Ok(NodeOutput {
                outputs: json!({ "answer": answer }),
                ..NodeOutput::default()
            })
        }
        NodeType::End => {
            let outputs = match config.get("outputs") {
                Some(Value::Object(map)) => {
                    let mut out = serde_json::Map::new();
                    for (name, template) in map {
                        out.insert(
                            name.clone(),
                            Value::String(vars.render(template.as_str().unwrap_or(""))?),
                        );
                    }
                    Value::Object(out)
                }
                _ => json!({}),
            };
            Ok(NodeOutput {
                outputs,
                ..NodeOutput::default()
            })
        }
        NodeType::Condition => {
            let result = condition::evaluate(config, vars)?;
            Ok(NodeOutput {
                outputs: json!({ "result": result }),
                branch: Some(result),
                ..NodeOutput::default()
            })
        }
        NodeType::HttpRequest => {
            let outputs = http_node::run(
                config,
                vars,
                &ctx.app.config.outbound,
                ctx.config.node_timeout,
            )
            .await?;
            Ok(NodeOutput {
                inputs: Some(json!({ "url": vars.render(text(config, "url"))? })),
                outputs,
                ..NodeOutput::default()
            })
        }
        NodeType::Llm => llm(ctx, index, config, vars).await,
        NodeType::KnowledgeRetrieval => knowledge(ctx, config, vars).await,
    }
}

/// KNOWLEDGE_RETRIEVAL: the best segments of the node's datasets (of the run's workspace)
/// for its query; `context` joins their text for a prompt.
async fn knowledge(
    ctx: &NodeContext<'_>,
    config: &Value,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    use crate::knowledge::metadata::MetadataFilter;
    use crate::knowledge::rerank::RerankChoice;
    use crate::knowledge::retrieval::{self, SearchOptions};
    let ids: Vec<Uuid> = config
        .get("datasetIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|v| v.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let query = vars.render(text(config, "query"))?;
    let options = SearchOptions {
        top_k: config
            .get("topK")
            .and_then(Value::as_u64)
            .map(|k| k.clamp(1, 100) as usize),
        threshold: config.get("scoreThreshold").and_then(Value::as_f64),
        filter: match config.get("metadataFilter") {
            Some(filter) if !filter.is_null() => {
                let rendered = numeric_bounds(vars.render_value(filter)?);
                MetadataFilter::parse(&rendered)
                    .map_err(|e| format!("config.metadataFilter: {e}"))?
            }
            _ => None,
        },
        rerank: match (
            text(config, "rerankProviderId").parse::<Uuid>(),
            text(config, "rerankModel"),
        ) {
            (Ok(provider_id), model) if !model.trim().is_empty() => Some(RerankChoice {
                provider_id,
                model: model.trim().to_string(),
            }),
            _ => None,
        },
    };
    let unavailable = |e: crate::error::AppError| match e {
        crate::error::AppError::Internal(_) => {
            tracing::error!(error = ?e, "knowledge retrieval failed");
            "knowledge retrieval failed".to_string()
        }
        other => other.to_string(),
    };
    let datasets = {
        let mut conn = ctx.app.engine.pool.get().await.map_err(|e| {
            tracing::error!(error = %e, "no database connection for a retrieval node");
            "the database is unavailable".to_string()
        })?;
        crate::knowledge::datasets::of_workspace(&mut conn, ctx.workspace_id, &ids)
            .await
            .map_err(unavailable)?
    };
    if datasets.is_empty() {
        return Err("none of the node's datasets exists in this workspace".into());
    }
    let hits = retrieval::search(ctx.app, &ctx.app.engine.pool, &datasets, &query, &options)
        .await
        .map_err(unavailable)?;
    let context = hits
        .iter()
        .map(|h| h.context.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let segments: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "segmentId": h.segment.id,
                "documentId": h.segment.document_id,
                "datasetId": h.segment.dataset_id,
                "documentName": h.document_name,
                "position": h.segment.position,
                "score": h.score,
                "metadata": h.document_metadata,
                "content": h.context,
            })
        })
        .collect();
    Ok(NodeOutput {
        inputs: Some(json!({ "query": query })),
        outputs: json!({ "context": context, "segments": segments }),
        ..NodeOutput::default()
    })
}

/// A metadata filter's range bounds rendered from variables are text: those that read as
/// numbers become numbers.
fn numeric_bounds(mut filter: Value) -> Value {
    for condition in filter.as_array_mut().into_iter().flatten() {
        let Some(range) = condition.get_mut("range").and_then(Value::as_object_mut) else {
            continue;
        };
        for bound in range.values_mut() {
            let number = bound
                .as_str()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|n| n.is_finite())
                .and_then(serde_json::Number::from_f64);
            if let Some(n) = number {
                *bound = Value::Number(n);
            }
        }
    }
    filter
}

async fn llm(
    ctx: &NodeContext<'_>,
    index: usize,
    config: &Value,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    let provider_id = Uuid::parse_str(text(config, "providerId"))
        .map_err(|_| "config.providerId is not a UUID".to_string())?;
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
    let access = ProviderAccess {
        encryption_key: &ctx.app.config.encryption_key,
        http: ctx.http.clone(),
        outbound: &ctx.app.config.outbound,
        echo_pace: ctx.config.echo_pace,
    };
    let resolved = {
        let mut conn = ctx.app.engine.pool.get().await.map_err(|e| {
            tracing::error!(error = %e, "no database connection for an LLM node");
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
        })?
    };
    let request = ChatRequest {
        model: resolved.model.clone(),
        messages,
        temperature: config.get("temperature").and_then(Value::as_f64),
        max_tokens: config
            .get("maxTokens")
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32),
    };
    let prefix = ctx
        .streamable
        .iter()
        .find(|(node, _)| *node == index)
        .map(|(_, prefix)| prefix.as_str());
    let mut reply_text = String::new();
    let mut streams: Option<bool> = None;
    let mut unfinished = Unfinished {
        pool: ctx.app.engine.pool.clone(),
        provider_id: resolved.provider_id,
        model: resolved.model.clone(),
        prompt_chars: request
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum(),
        completion_chars: 0,
        done: false,
    };
    let usage = resolved
        .client
        .stream_chat(&request, |piece| {
            reply_text.push_str(piece);
            unfinished.completion_chars += piece.chars().count();
            let (Some(reply), Some(prefix)) = (ctx.reply, prefix) else {
                return;
            };
            let mine = *streams.get_or_insert_with(|| {
                let mut owner = ctx.streaming.lock().unwrap_or_else(|p| p.into_inner());
                match *owner {
                    None => {
                        *owner = Some(index);
                        reply.delta(&vars.render(prefix).unwrap_or_default());
                        true
                    }
                    Some(other) => other == index,
                }
            });
            if mine {
                reply.delta(piece);
            }
        })
        .await;
    unfinished.done = true;
    let usage = usage.map_err(|e| e.to_string())?;
    if let Ok(mut conn) = ctx.app.engine.pool.get().await
        && let Err(e) =
            provider::record_usage(&mut conn, resolved.provider_id, &resolved.model, usage).await
    {
        tracing::warn!(error = ?e, "cannot count a provider's tokens");
    }
    Ok(NodeOutput {
        inputs: Some(json!({ "model": resolved.model, "system": system, "prompt": prompt })),
        outputs: json!({
            "text": reply_text,
            "usage": {
                "promptTokens": usage.prompt_tokens,
                "completionTokens": usage.completion_tokens,
                "totalTokens": usage.total_tokens,
            },
        }),
        usage: Some(usage),
        model: Some((resolved.provider_name, resolved.model)),
        branch: None,
    })
}

/// The tokens of a reply cut off by a stop (its future dropped mid-stream): the provider
/// generated them, so they count against its quota (estimated, about four characters a
/// token, as no usage arrived).
struct Unfinished {
    pool: crate::db::DbPool,
    provider_id: Uuid,
    model: String,
    prompt_chars: usize,
    completion_chars: usize,
    done: bool,
}

impl Drop for Unfinished {
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
        let (pool, provider_id, model) = (
            self.pool.clone(),
            self.provider_id,
            std::mem::take(&mut self.model),
        );
        tokio::spawn(async move {
            if let Ok(mut conn) = pool.get().await
                && let Err(e) = provider::record_usage(&mut conn, provider_id, &model, usage).await
            {
                tracing::warn!(error = ?e, "cannot count a stopped reply's tokens");
            }
        });
    }
}
