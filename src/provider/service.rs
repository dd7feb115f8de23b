//! Creating, changing and deleting model providers (OWNER and ADMIN).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::LlmProvider;
use crate::db::schema::llm_providers;
use crate::error::{AppError, AppResult};
use crate::secrets::{self, Secret};
use crate::validate;

/// A provider's settings as given; `None` leaves a setting as it is on update. An empty
/// `api_key` removes the key.
#[derive(Default)]
pub struct ProviderInput {
    pub name: Option<String>,
    pub provider_type: Option<&'static str>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub models: Option<Vec<String>>,
    pub default_model: Option<String>,
    pub embedding_model: Option<String>,
    /// `Some(None)` removes the quota.
    pub max_tokens: Option<Option<i64>>,
    pub is_enabled: Option<bool>,
}

fn check_url(url: &str) -> AppResult<String> {
    let url = validate::text("baseUrl", url.trim(), 500)?;
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            AppError::bad_input("baseUrl", "baseUrl must start with http:// or https://")
        })?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(AppError::bad_input("baseUrl", "baseUrl must name a host"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn check_models(models: &[String]) -> AppResult<()> {
    if models.len() > 200 {
        return Err(AppError::bad_input("models", "at most 200 models"));
    }
    for m in models {
        validate::name("models", m, 100)?;
    }
    Ok(())
}

fn unique_violation(e: diesel::result::Error) -> AppError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::Conflict("a provider with this name exists in the workspace".into()),
        other => other.into(),
    }
}

/// What a provider's sealed key is bound to: its row.
pub fn key_binding(provider_id: Uuid) -> String {
    format!("llm_providers.api_key_encrypted:{provider_id}")
}

/// Seals again, bound to their rows, the provider keys sealed before bindings existed (run
/// at start; idempotent). Returns how many were bound.
pub async fn bind_legacy_keys(conn: &mut AsyncPgConnection, key: &Secret) -> AppResult<usize> {
    let rows: Vec<(Uuid, Vec<u8>)> = llm_providers::table
        .filter(llm_providers::api_key_encrypted.is_not_null())
        .select((
            llm_providers::id,
            llm_providers::api_key_encrypted.assume_not_null(),
        ))
        .load(conn)
        .await?;
    let mut bound = 0;
    for (id, sealed) in rows {
        let binding = key_binding(id);
        if secrets::is_bound(key, &sealed, &binding) {
            continue;
        }
        // One that does not open (another key) is left as it is: calls with it fail clearly.
        let Ok(plain) = secrets::decrypt(key, &sealed, &binding) else {
            tracing::warn!(provider_id = %id, "a stored provider key does not open with this key");
            continue;
        };
        let resealed = secrets::encrypt(key, &plain, &binding).map_err(AppError::internal)?;
        // Only if unchanged meanwhile (another instance starting, an update).
        bound += diesel::update(llm_providers::table.find(id))
            .filter(llm_providers::api_key_encrypted.eq(&sealed))
            .set(llm_providers::api_key_encrypted.eq(&resealed))
            .execute(conn)
            .await?;
    }
    Ok(bound)
}

fn seal(key: &Secret, api_key: &str, provider_id: Uuid) -> AppResult<Option<Vec<u8>>> {
    if api_key.is_empty() {
        return Ok(None);
    }
    validate::text("apiKey", api_key, 4096)?;
    secrets::encrypt(key, api_key.as_bytes(), &key_binding(provider_id))
        .map(Some)
        .map_err(AppError::internal)
}

/// Creates a provider in a workspace.
pub async fn create_provider(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    encryption_key: &Secret,
    workspace_id: Uuid,
    input: ProviderInput,
) -> AppResult<LlmProvider> {
    let name = validate::name("name", input.name.as_deref().unwrap_or(""), 255)?;
    let provider_type = input.provider_type.unwrap_or("OPENAI_COMPATIBLE");
    let base_url = input.base_url.as_deref().map(check_url).transpose()?;
    if provider_type == "OPENAI_COMPATIBLE" && base_url.is_none() {
        return Err(AppError::bad_input(
            "baseUrl",
            "an OPENAI_COMPATIBLE provider needs a baseUrl",
        ));
    }
    let models = input.models.unwrap_or_default();
    check_models(&models)?;
    let default_model = input
        .default_model
        .as_deref()
        .map(|m| validate::name("defaultModel", m, 100))
        .transpose()?;
    if let Some(m) = &default_model
        && !models.contains(m)
    {
        return Err(AppError::bad_input(
            "defaultModel",
            "defaultModel must be one of models",
        ));
    }
    let embedding_model = input
        .embedding_model
        .as_deref()
        .map(|m| validate::name("embeddingModel", m, 100))
        .transpose()?;
    let max_tokens = input.max_tokens.flatten();
    if max_tokens.is_some_and(|m| m < 0) {
        return Err(AppError::bad_input(
            "maxTokens",
            "maxTokens cannot be negative",
        ));
    }
    // The id is chosen here: the sealed key is bound to it.
    let id = Uuid::new_v4();
    let sealed = input
        .api_key
        .as_deref()
        .map(|k| seal(encryption_key, k, id))
        .transpose()?
        .flatten();
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, workspace_id, Action::ManageProviders).await?;
        let provider: LlmProvider = diesel::insert_into(llm_providers::table)
            .values((
                llm_providers::id.eq(id),
                llm_providers::workspace_id.eq(workspace_id),
                llm_providers::name.eq(&name),
                llm_providers::provider_type.eq(provider_type),
                llm_providers::base_url.eq(&base_url),
                llm_providers::api_key_encrypted.eq(&sealed),
                llm_providers::models.eq(json!(models)),
                llm_providers::default_model.eq(&default_model),
                llm_providers::embedding_model.eq(&embedding_model),
                llm_providers::max_tokens.eq(max_tokens),
                llm_providers::is_enabled.eq(input.is_enabled.unwrap_or(true)),
                llm_providers::created_by.eq(actor.user_id().ok()),
            ))
            .returning(LlmProvider::as_returning())
            .get_result(conn)
            .await
            .map_err(unique_violation)?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "llm_provider.create",
                resource_type: "llm_provider",
                resource_id: Some(provider.id),
                // Never the key itself.
                metadata: json!({ "name": name, "providerType": provider_type, "hasApiKey": sealed.is_some() }),
            },
        )
        .await?;
        Ok(provider)
    })
    .await
}

async fn provider_for_managing(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<LlmProvider> {
    let user_id = actor.user_id()?;
    let provider: LlmProvider = llm_providers::table
        .find(id)
        .filter(llm_providers::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(LlmProvider::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("LLM provider"))?;
    authorize_workspace(conn, actor, provider.workspace_id, Action::ManageProviders).await?;
    Ok(provider)
}

/// Changes a provider's settings.
pub async fn update_provider(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    encryption_key: &Secret,
    id: Uuid,
    input: ProviderInput,
) -> AppResult<LlmProvider> {
    let name = input
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 255))
        .transpose()?;
    let base_url = input.base_url.as_deref().map(check_url).transpose()?;
    if let Some(models) = &input.models {
        check_models(models)?;
    }
    let sealed = input
        .api_key
        .as_deref()
        .map(|k| seal(encryption_key, k, id))
        .transpose()?;
    if input.max_tokens.flatten().is_some_and(|m| m < 0) {
        return Err(AppError::bad_input(
            "maxTokens",
            "maxTokens cannot be negative",
        ));
    }
    conn.transaction(async |conn| {
        let current = provider_for_managing(conn, actor, id).await?;
        let models: Vec<String> = match &input.models {
            Some(m) => m.clone(),
            None => serde_json::from_value(current.models.clone()).unwrap_or_default(),
        };
        let default_model = input
            .default_model
            .clone()
            .or(current.default_model.clone());
        if let Some(m) = &default_model
            && !models.contains(m)
        {
            return Err(AppError::bad_input(
                "defaultModel",
                "defaultModel must be one of models",
            ));
        }
        // A key goes only where it was entered for: a new baseUrl without the key entered
        // again drops the stored one, so it is never sent to another host.
        let moved = base_url
            .as_ref()
            .is_some_and(|url| Some(url) != current.base_url.as_ref());
        let api_key = match (&sealed, moved) {
            (Some(entered), _) => entered.clone(),
            (None, true) => None,
            (None, false) => current.api_key_encrypted.clone(),
        };
        let key_cleared = sealed.is_none() && moved && current.api_key_encrypted.is_some();
        let updated: LlmProvider = diesel::update(llm_providers::table.find(current.id))
            .set((
                llm_providers::name.eq(name.clone().unwrap_or(current.name.clone())),
                llm_providers::base_url.eq(base_url.clone().or(current.base_url.clone())),
                llm_providers::api_key_encrypted.eq(api_key),
                llm_providers::models.eq(json!(models)),
                llm_providers::default_model.eq(default_model),
                llm_providers::embedding_model.eq(input
                    .embedding_model
                    .clone()
                    .or(current.embedding_model.clone())),
                llm_providers::max_tokens.eq(input.max_tokens.unwrap_or(current.max_tokens)),
                llm_providers::is_enabled.eq(input.is_enabled.unwrap_or(current.is_enabled)),
            ))
            .returning(LlmProvider::as_returning())
            .get_result(conn)
            .await
            .map_err(unique_violation)?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "llm_provider.update",
                resource_type: "llm_provider",
                resource_id: Some(updated.id),
                metadata: json!({ "apiKeyChanged": sealed.is_some(), "apiKeyCleared": key_cleared }),
            },
        )
        .await?;
        Ok(updated)
    })
    .await
}

/// Deletes a provider; workflows naming it fail at their LLM node until changed.
pub async fn delete_provider(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let current = provider_for_managing(conn, actor, id).await?;
        diesel::delete(llm_providers::table.find(current.id))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "llm_provider.delete",
                resource_type: "llm_provider",
                resource_id: Some(current.id),
                metadata: json!({ "name": current.name }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}
