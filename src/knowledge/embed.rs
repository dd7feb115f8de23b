//! Embeddings of a dataset's segments and queries, through the provider configured on the
//! dataset (HIGH_QUALITY datasets with an embedding model only).

use diesel_async::AsyncPgConnection;

use crate::app::App;
use crate::db::models::Dataset;
use crate::error::{AppError, AppResult};
use crate::llm::provider::{self, ProviderAccess, ResolvedModel};

use super::tokens;

/// Texts sent to the provider in one request.
pub const BATCH: usize = 32;

/// The embedding model of `dataset`, or `None` when it is searched by keywords only.
pub async fn embedder(
    app: &App,
    conn: &mut AsyncPgConnection,
    dataset: &Dataset,
) -> AppResult<Option<ResolvedModel>> {
    if dataset.indexing_technique != "HIGH_QUALITY" {
        return Ok(None);
    }
    let (Some(provider_id), Some(model)) = (
        dataset.embedding_provider_id,
        dataset.embedding_model.as_deref(),
    ) else {
        return Ok(None);
    };
    provider::resolve(
        conn,
        &access(app),
        dataset.workspace_id,
        provider_id,
        Some(model),
    )
    .await
    .map(Some)
}

/// How knowledge calls the workspace's model providers (embeddings, reranking): the
/// engine's outbound client, keys opened with the instance's key.
pub fn access(app: &App) -> ProviderAccess<'_> {
    ProviderAccess {
        encryption_key: &app.config.encryption_key,
        http: app.engine.http.clone(),
        outbound: &app.config.outbound,
        echo_pace: app.engine.config.echo_pace,
    }
}

/// Embeds `texts` (one request), counting their tokens against the provider's quota (no
/// database connection is held while the provider answers).
pub async fn embed(app: &App, model: &ResolvedModel, texts: &[String]) -> AppResult<Vec<Vec<f32>>> {
    let vectors = model
        .client
        .embed(&model.model, texts)
        .await
        .map_err(AppError::from)?;
    if vectors.len() != texts.len() {
        return Err(AppError::Conflict(format!(
            "the model provider returned {} embeddings for {} texts",
            vectors.len(),
            texts.len()
        )));
    }
    let used: usize = texts.iter().map(|t| tokens::count(t)).sum();
    let used = i32::try_from(used).unwrap_or(i32::MAX);
    let usage = crate::llm::Usage {
        prompt_tokens: used,
        completion_tokens: 0,
        total_tokens: used,
    };
    app.engine
        .usage
        .counted(model.provider_id, &model.model, usage)
        .await;
    Ok(vectors)
}
