//! Model providers in GraphQL. The API key is write-only: `hasApiKey` says whether one is set.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::enums::parse;
use super::loaders::*;
use super::tenancy::WorkspaceObject;
use crate::db::models::LlmProvider;
use crate::provider::service::{self, ProviderInput};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProviderType {
    /// Any server speaking OpenAI's chat completions API (OpenAI, vLLM, Ollama, llama.cpp...).
    OpenaiCompatible,
    /// Built in, for development and demos: replies with the query, word by word.
    Echo,
}

impl ProviderType {
    fn as_str(self) -> &'static str {
        match self {
            ProviderType::OpenaiCompatible => "OPENAI_COMPATIBLE",
            ProviderType::Echo => "ECHO",
        }
    }
}

pub struct LlmProviderObject(pub LlmProvider);

#[Object(name = "LlmProvider")]
impl LlmProviderObject {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn provider_type(&self) -> Result<ProviderType> {
        Ok(parse(&self.0.provider_type)?)
    }
    async fn base_url(&self) -> Option<&str> {
        self.0.base_url.as_deref()
    }
    /// Whether an API key is stored. The key itself is never returned.
    async fn has_api_key(&self) -> bool {
        self.0.api_key_encrypted.is_some()
    }
    async fn models(&self) -> Vec<String> {
        serde_json::from_value(self.0.models.clone()).unwrap_or_default()
    }
    async fn default_model(&self) -> Option<&str> {
        self.0.default_model.as_deref()
    }
    async fn embedding_model(&self) -> Option<&str> {
        self.0.embedding_model.as_deref()
    }
    /// The token quota; null is unlimited.
    async fn max_tokens(&self) -> Option<i64> {
        self.0.max_tokens
    }
    /// Tokens used so far, counted from real usage.
    async fn used_tokens(&self) -> i64 {
        self.0.used_tokens
    }
    async fn is_enabled(&self) -> bool {
        self.0.is_enabled
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn workspace(&self, ctx: &Context<'_>) -> Result<Option<WorkspaceObject>> {
        Ok(ctx
            .loader()?
            .load_one(WorkspaceById(self.0.workspace_id))
            .await?
            .map(WorkspaceObject))
    }
}

#[derive(InputObject)]
pub struct CreateLlmProviderInput {
    workspace_id: Uuid,
    name: String,
    provider_type: ProviderType,
    base_url: Option<String>,
    /// Write-only: stored encrypted.
    api_key: Option<String>,
    #[graphql(default)]
    models: Vec<String>,
    default_model: Option<String>,
    embedding_model: Option<String>,
    max_tokens: Option<i64>,
}

#[derive(InputObject)]
pub struct UpdateLlmProviderInput {
    id: Uuid,
    name: Option<String>,
    base_url: Option<String>,
    /// Write-only: a new key, or "" to remove it; omitted keeps the stored one, unless
    /// `baseUrl` changes: the stored key is then removed (enter it again with the new URL).
    api_key: Option<String>,
    models: Option<Vec<String>>,
    default_model: Option<String>,
    embedding_model: Option<String>,
    /// null removes the quota; omitted keeps it.
    max_tokens: MaybeUndefined<i64>,
    is_enabled: Option<bool>,
}

#[derive(Default)]
pub struct ProviderMutation;

#[Object]
impl ProviderMutation {
    /// Adds a model provider to a workspace (OWNER and ADMIN).
    async fn create_llm_provider(
        &self,
        ctx: &Context<'_>,
        input: CreateLlmProviderInput,
    ) -> Result<LlmProviderObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let settings = ProviderInput {
            name: Some(input.name),
            provider_type: Some(input.provider_type.as_str()),
            base_url: input.base_url,
            api_key: input.api_key,
            models: Some(input.models),
            default_model: input.default_model,
            embedding_model: input.embedding_model,
            max_tokens: Some(input.max_tokens),
            is_enabled: None,
        };
        let provider = service::create_provider(
            &mut conn,
            actor,
            &ctx.client(),
            &app.config.encryption_key,
            input.workspace_id,
            settings,
        )
        .await?;
        Ok(LlmProviderObject(provider))
    }

    /// Changes a model provider (OWNER and ADMIN).
    async fn update_llm_provider(
        &self,
        ctx: &Context<'_>,
        input: UpdateLlmProviderInput,
    ) -> Result<LlmProviderObject> {
        let actor = ctx.actor()?;
        let app = ctx.app()?;
        let mut conn = conn(app).await?;
        let max_tokens = match input.max_tokens {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(v) => Some(Some(v)),
        };
        let settings = ProviderInput {
            name: input.name,
            provider_type: None,
            base_url: input.base_url,
            api_key: input.api_key,
            models: input.models,
            default_model: input.default_model,
            embedding_model: input.embedding_model,
            max_tokens,
            is_enabled: input.is_enabled,
        };
        let provider = service::update_provider(
            &mut conn,
            actor,
            &ctx.client(),
            &app.config.encryption_key,
            input.id,
            settings,
        )
        .await?;
        Ok(LlmProviderObject(provider))
    }

    /// Deletes a model provider (OWNER and ADMIN).
    async fn delete_llm_provider(&self, ctx: &Context<'_>, id: Uuid) -> Result<bool> {
        let actor = ctx.actor()?;
        let mut conn = conn(ctx.app()?).await?;
        service::delete_provider(&mut conn, actor, &ctx.client(), id).await?;
        Ok(true)
    }
}
