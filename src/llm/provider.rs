//! A workspace's model provider as the engine uses it: the row read with the workspace
//! filter, its key decrypted, its quota checked before any call, and the tokens a call used
//! added to `used_tokens`.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::openai::OpenAiClient;
use super::{ChatRequest, Chunk, LlmError, Turn, Usage, echo};
use crate::db::models::LlmProvider;
use crate::db::schema::llm_providers;
use crate::db::statement::KeepPrepared;
use crate::error::{AppError, AppResult};
use crate::secrets::{self, Secret};

/// How to call a provider.
#[derive(Clone)]
pub enum ModelClient {
    OpenAi(OpenAiClient),
    /// The built-in ECHO provider, `pace` between words.
    Echo {
        pace: Duration,
    },
}

/// A provider ready to be called with one model.
#[derive(Clone)]
pub struct ResolvedModel {
    pub provider_id: Uuid,
    pub provider_name: String,
    pub model: String,
    pub client: ModelClient,
}

impl ResolvedModel {
    /// The same model, called with an interactive caller's patience: one retry and `timeout`
    /// per answer (`WEFT_INTERACTIVE_TIMEOUT_SECS`) instead of the background's three and a
    /// minute.
    pub fn interactive(mut self, timeout: Duration) -> ResolvedModel {
        if let ModelClient::OpenAi(client) = &mut self.client {
            client.retries = 1;
            client.timeout = timeout;
        }
        self
    }
}

/// What resolving needs beyond the row.
pub struct ProviderAccess<'a> {
    pub encryption_key: &'a Secret,
    /// The outbound guard's client, and its rules for addresses named in a base URL.
    pub http: reqwest::Client,
    pub outbound: &'a crate::outbound::OutboundConfig,
    pub echo_pace: Duration,
}

/// The provider `provider_id` of `workspace_id` with `model` (or its default model),
/// refused when disabled or over its quota.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    access: &ProviderAccess<'_>,
    workspace_id: Uuid,
    provider_id: Uuid,
    model: Option<&str>,
) -> AppResult<ResolvedModel> {
    let row: LlmProvider = llm_providers::table
        .find(provider_id)
        .filter(llm_providers::workspace_id.eq(workspace_id))
        .select(LlmProvider::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("model provider"))?;
    if !row.is_enabled {
        return Err(AppError::Conflict(format!(
            "the model provider \"{}\" is disabled",
            row.name
        )));
    }
    check_quota_of(&row)?;
    let model = model
        .filter(|m| !m.trim().is_empty())
        .map(str::to_string)
        .or_else(|| row.default_model.clone())
        .or_else(|| {
            row.models
                .as_array()
                .and_then(|m| <[serde_json::Value]>::first(m))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "the model provider \"{}\" has no default model: name one in the node",
                row.name
            ))
        })?;
    let client = match row.provider_type.as_str() {
        "ECHO" => ModelClient::Echo {
            pace: access.echo_pace,
        },
        _ => {
            let base_url = row.base_url.as_deref().ok_or_else(|| {
                AppError::Conflict(format!(
                    "the model provider \"{}\" has no baseUrl",
                    row.name
                ))
            })?;
            // Names are checked when the guard resolves them; an address in the URL here.
            let parsed = reqwest::Url::parse(base_url).map_err(|_| {
                AppError::Conflict(format!(
                    "the model provider \"{}\" has a baseUrl that is not a URL",
                    row.name
                ))
            })?;
            access.outbound.check_url(&parsed).map_err(|refused| {
                AppError::Conflict(format!("the model provider \"{}\": {refused}", row.name))
            })?;
            let api_key = match &row.api_key_encrypted {
                Some(sealed) => {
                    let binding = crate::provider::service::key_binding(row.id);
                    let plain = secrets::decrypt(access.encryption_key, sealed, &binding)
                        .map_err(AppError::internal)?;
                    Some(String::from_utf8(plain).map_err(AppError::internal)?)
                }
                None => None,
            };
            ModelClient::OpenAi(OpenAiClient::with_http(
                access.http.clone(),
                base_url,
                api_key,
            ))
        }
    };
    Ok(ResolvedModel {
        provider_id: row.id,
        provider_name: row.name,
        model,
        client,
    })
}

fn check_quota_of(row: &LlmProvider) -> AppResult<()> {
    match row.max_tokens {
        Some(max) if row.used_tokens >= max => Err(AppError::QuotaExceeded(format!(
            "the model provider \"{}\" has used its quota of {max} tokens",
            row.name
        ))),
        _ => Ok(()),
    }
}

/// Refuses with QUOTA_EXCEEDED when one of the providers (of the workspace) is over quota.
pub async fn check_quotas(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    provider_ids: &[Uuid],
) -> AppResult<()> {
    if provider_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<LlmProvider> = llm_providers::table
        .filter(llm_providers::id.eq_any(provider_ids))
        .filter(llm_providers::workspace_id.eq(workspace_id))
        .select(LlmProvider::as_select())
        .load(conn)
        .await?;
    rows.iter().try_for_each(check_quota_of)
}

/// Adds the tokens of `calls` calls to their provider's count and to its workspace's usage
/// of that model in the current 15-minute slot (`Workspace.usage`), in one statement. Calls
/// count through `llm::usage::UsageLedger`, which batches them.
pub async fn record_usage(
    conn: &mut AsyncPgConnection,
    provider_id: Uuid,
    model: &str,
    usage: Usage,
    calls: i64,
) -> AppResult<()> {
    if usage.total_tokens <= 0 {
        return Ok(());
    }
    diesel::sql_query(
        "WITH provider AS ( \
             UPDATE llm_providers SET used_tokens = used_tokens + $2 WHERE id = $1 \
             RETURNING workspace_id, name) \
         INSERT INTO workspace_token_usage AS u (workspace_id, slot, provider_id, provider_name, model, \
                                                 prompt_tokens, completion_tokens, total_tokens, calls) \
         SELECT workspace_id, weft_stats_slot(now()), $1, name, $3, $4, $5, $2, $6 FROM provider \
         ON CONFLICT (workspace_id, slot, provider_id, model) DO UPDATE SET \
             provider_name = excluded.provider_name, \
             prompt_tokens = u.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = u.completion_tokens + excluded.completion_tokens, \
             total_tokens = u.total_tokens + excluded.total_tokens, \
             calls = u.calls + excluded.calls, updated_at = now()",
    )
    .bind::<diesel::sql_types::Uuid, _>(provider_id)
    .bind::<diesel::sql_types::BigInt, _>(i64::from(usage.total_tokens))
    .bind::<diesel::sql_types::Text, _>(crate::validate::truncate(model, 100))
    .bind::<diesel::sql_types::BigInt, _>(i64::from(usage.prompt_tokens.max(0)))
    .bind::<diesel::sql_types::BigInt, _>(i64::from(usage.completion_tokens.max(0)))
    .bind::<diesel::sql_types::BigInt, _>(calls)
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

impl ModelClient {
    /// Embeds `inputs` with `model`, one vector per input, in order.
    pub async fn embed(&self, model: &str, inputs: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        match self {
            ModelClient::OpenAi(client) => client.embeddings(model, inputs).await,
            ModelClient::Echo { .. } => Ok(inputs.iter().map(|t| echo::embedding(t)).collect()),
        }
    }

    /// Scores `documents` against `query`: the `top_n` best as (index, relevance score),
    /// best first.
    pub async fn rerank(
        &self,
        model: &str,
        query: &str,
        documents: &[String],
        top_n: usize,
    ) -> Result<Vec<(usize, f64)>, LlmError> {
        match self {
            ModelClient::OpenAi(client) => client.rerank(model, query, documents, top_n).await,
            ModelClient::Echo { .. } => {
                let mut scored: Vec<(usize, f64)> = documents
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (i, echo::relevance(query, d)))
                    .collect();
                super::openai::best_first(&mut scored);
                scored.truncate(top_n);
                Ok(scored)
            }
        }
    }

    /// Streams a reply; the usage is the provider's, or estimated (about four characters a
    /// token) when it reported none.
    pub async fn stream_chat(
        &self,
        request: &ChatRequest,
        on_chunk: impl FnMut(&str),
    ) -> Result<Usage, LlmError> {
        Ok(self.turn(request, on_chunk).await?.usage)
    }

    /// One turn of the model: its text streamed to `on_chunk`, then the functions it called
    /// (with `request.tools` offered) and what it cost (estimated when not reported).
    pub async fn turn(
        &self,
        request: &ChatRequest,
        mut on_chunk: impl FnMut(&str),
    ) -> Result<Turn, LlmError> {
        let mut completion_chars = 0usize;
        let mut on = |chunk: Chunk| {
            if let Chunk::Delta(text) = chunk {
                completion_chars += text.chars().count();
                on_chunk(&text);
            }
        };
        let (reported, tool_calls) = match self {
            ModelClient::OpenAi(client) => {
                let completion = client.stream_chat(request, &mut on).await?;
                (completion.usage, completion.tool_calls)
            }
            ModelClient::Echo { pace } => echo::turn(request, *pace, &mut on).await,
        };
        let usage = reported.unwrap_or_else(|| {
            let prompt: usize = request
                .messages
                .iter()
                .map(|m| {
                    m.content.chars().count()
                        + m.tool_calls
                            .iter()
                            .map(|c| c.arguments.len())
                            .sum::<usize>()
                })
                .sum();
            let called: usize = tool_calls.iter().map(|c| c.arguments.len()).sum();
            let prompt_tokens = prompt.div_ceil(4) as i32;
            let completion_tokens = (completion_chars + called).div_ceil(4) as i32;
            Usage {
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
            }
        });
        Ok(Turn { usage, tool_calls })
    }
}
