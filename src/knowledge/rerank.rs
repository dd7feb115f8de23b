//! Reranking: a model provider's rerank endpoint (`POST {baseUrl}/rerank`: query,
//! documents, top_n → index, relevance_score, as Jina, Cohere-compatible and vLLM servers
//! serve it) reorders a search's best fused candidates. Chosen per dataset
//! (`datasets.rerank_provider_id` / `rerank_model`) or per KNOWLEDGE_RETRIEVAL node.

use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::app::App;
use crate::error::{AppError, AppResult};
use crate::llm::provider::{self, ResolvedModel};

/// A reranking model as configured: a provider of the workspace and its model.
#[derive(Debug, Clone, PartialEq)]
pub struct RerankChoice {
    pub provider_id: Uuid,
    pub model: String,
}

/// Candidates handed to the reranker for `top_k` results: four times as many, at least 20
/// and at most 100.
pub fn candidates(top_k: usize) -> usize {
    (top_k * 4).clamp(20, 100)
}

/// The provider and model of `choice`, read with the workspace filter.
pub async fn resolve(
    app: &App,
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    choice: &RerankChoice,
) -> AppResult<ResolvedModel> {
    provider::resolve(
        conn,
        &super::embed::access(app),
        workspace_id,
        choice.provider_id,
        Some(&choice.model),
    )
    .await
}

/// Scores `documents` against `query` with `model`: a relevance score per document, in
/// the documents' order (the provider is asked for all of them). Counts the texts' tokens
/// against the provider's quota; no database connection is held while it answers.
pub async fn rerank(
    app: &App,
    model: &ResolvedModel,
    query: &str,
    documents: &[String],
) -> AppResult<Vec<f64>> {
    if documents.is_empty() {
        return Ok(Vec::new());
    }
    let ranked = model
        .client
        .rerank(&model.model, query, documents, documents.len())
        .await
        .map_err(AppError::from)?;
    if ranked.len() != documents.len() {
        return Err(AppError::Conflict(format!(
            "the reranker scored {} of {} documents",
            ranked.len(),
            documents.len()
        )));
    }
    let mut scores = vec![0.0; documents.len()];
    for (index, score) in ranked {
        scores[index] = score;
    }
    let used: usize = super::tokens::count(query) * documents.len()
        + documents
            .iter()
            .map(|d| super::tokens::count(d))
            .sum::<usize>();
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
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerank_candidates_are_bounded() {
        assert_eq!(candidates(1), 20);
        assert_eq!(candidates(10), 40);
        assert_eq!(candidates(100), 100);
    }
}
