//! Creating, configuring and deleting datasets (EDITOR and up).

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::Dataset;
use crate::db::schema::{datasets, llm_providers};
use crate::engine::queue;
use crate::error::{AppError, AppResult};
use crate::validate;

/// A dataset's settings; `None` keeps (on update) or defaults (on create) a setting.
#[derive(Default)]
pub struct DatasetSettings {
    pub name: Option<String>,
    pub description: Option<String>,
    /// KEYWORD or HIGH_QUALITY.
    pub indexing_technique: Option<&'static str>,
    pub similarity_threshold: Option<f64>,
    pub vector_similarity_weight: Option<f64>,
    pub top_k: Option<i32>,
    /// The provider whose embeddings endpoint embeds segments (HIGH_QUALITY).
    pub embedding_provider_id: Option<Uuid>,
    pub embedding_model: Option<String>,
    /// The provider whose rerank endpoint reorders the best candidates; `Some(None)`
    /// turns reranking off.
    pub rerank_provider_id: Option<Option<Uuid>>,
    pub rerank_model: Option<String>,
}

/// Refuses a provider (`field`) that is not one of the workspace's.
async fn check_provider(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    provider_id: Option<Uuid>,
    field: &'static str,
) -> AppResult<()> {
    let Some(provider_id) = provider_id else {
        return Ok(());
    };
    let found: i64 = llm_providers::table
        .filter(llm_providers::id.eq(provider_id))
        .filter(llm_providers::workspace_id.eq(workspace_id))
        .count()
        .get_result(conn)
        .await?;
    if found == 0 {
        return Err(AppError::bad_input(
            field,
            format!("{field} is not a model provider of the dataset's workspace"),
        ));
    }
    Ok(())
}

fn check(settings: &DatasetSettings) -> AppResult<()> {
    for (field, value) in [
        ("similarityThreshold", settings.similarity_threshold),
        ("vectorSimilarityWeight", settings.vector_similarity_weight),
    ] {
        if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(AppError::bad_input(
                field,
                format!("{field} is between 0 and 1"),
            ));
        }
    }
    if settings.top_k.is_some_and(|k| !(1..=100).contains(&k)) {
        return Err(AppError::bad_input("topK", "topK is between 1 and 100"));
    }
    if let Some(model) = &settings.embedding_model {
        validate::name("embeddingModel", model, 100)?;
    }
    if let Some(model) = &settings.rerank_model {
        validate::name("rerankModel", model, 100)?;
    }
    Ok(())
}

/// The reranker a dataset ends with: both its provider and model, or neither.
fn rerank_of(
    settings: &DatasetSettings,
    current: Option<&Dataset>,
) -> AppResult<(Option<Uuid>, Option<String>)> {
    let provider = match settings.rerank_provider_id {
        Some(p) => p,
        None => current.and_then(|d| d.rerank_provider_id),
    };
    let model = match provider {
        None => None,
        Some(_) => settings
            .rerank_model
            .as_deref()
            .map(|m| m.trim().to_string())
            .or_else(|| current.and_then(|d| d.rerank_model.clone())),
    };
    if provider.is_some() && model.is_none() {
        return Err(AppError::bad_input(
            "rerankModel",
            "a reranking provider needs rerankModel, the model its rerank endpoint serves",
        ));
    }
    if provider.is_none() && settings.rerank_model.is_some() {
        return Err(AppError::bad_input(
            "rerankProviderId",
            "rerankModel needs rerankProviderId, the provider that serves it",
        ));
    }
    Ok((provider, model))
}

pub async fn create_dataset(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workspace_id: Uuid,
    settings: DatasetSettings,
) -> AppResult<Dataset> {
    let name = validate::name("name", settings.name.as_deref().unwrap_or(""), 255)?;
    let description = settings
        .description
        .as_deref()
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    check(&settings)?;
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        check_provider(
            conn,
            workspace_id,
            settings.embedding_provider_id,
            "embeddingProviderId",
        )
        .await?;
        let (rerank_provider, rerank_model) = rerank_of(&settings, None)?;
        check_provider(conn, workspace_id, rerank_provider, "rerankProviderId").await?;
        let dataset: Dataset = diesel::insert_into(datasets::table)
            .values((
                datasets::workspace_id.eq(workspace_id),
                datasets::name.eq(&name),
                datasets::description.eq(&description),
                datasets::indexing_technique.eq(settings.indexing_technique.unwrap_or("KEYWORD")),
                datasets::similarity_threshold
                    .eq(settings.similarity_threshold.unwrap_or(0.0) as f32),
                datasets::vector_similarity_weight
                    .eq(settings.vector_similarity_weight.unwrap_or(0.3) as f32),
                datasets::top_k.eq(settings.top_k.unwrap_or(5)),
                datasets::embedding_provider_id.eq(settings.embedding_provider_id),
                datasets::embedding_model.eq(settings.embedding_model.as_deref().map(str::trim)),
                datasets::rerank_provider_id.eq(rerank_provider),
                datasets::rerank_model.eq(&rerank_model),
                datasets::created_by.eq(actor.user_id().ok()),
            ))
            .returning(Dataset::as_returning())
            .get_result(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "dataset.create",
                resource_type: "dataset",
                resource_id: Some(dataset.id),
                metadata: json!({ "name": name, "indexingTechnique": dataset.indexing_technique }),
            },
        )
        .await?;
        Ok(dataset)
    })
    .await
}

pub(crate) async fn dataset_for_building(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    id: Uuid,
) -> AppResult<Dataset> {
    let user_id = actor.user_id()?;
    let dataset: Dataset = datasets::table
        .find(id)
        .filter(datasets::deleted_at.is_null())
        .filter(datasets::workspace_id.eq_any(visible_workspace_ids(user_id)))
        .select(Dataset::as_select())
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound("dataset"))?;
    authorize_workspace(conn, actor, dataset.workspace_id, Action::Build).await?;
    Ok(dataset)
}

/// `updateDataset`; whether documents were queued to be indexed again (a new embedding
/// model) is returned beside the dataset.
pub async fn update_dataset(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
    settings: DatasetSettings,
) -> AppResult<(Dataset, bool)> {
    let name = settings
        .name
        .as_deref()
        .map(|n| validate::name("name", n, 255))
        .transpose()?;
    let description = settings
        .description
        .as_deref()
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    check(&settings)?;
    conn.transaction(async |conn| {
        let current = dataset_for_building(conn, actor, id).await?;
        check_provider(
            conn,
            current.workspace_id,
            settings.embedding_provider_id,
            "embeddingProviderId",
        )
        .await?;
        let (rerank_provider, rerank_model) = rerank_of(&settings, Some(&current))?;
        if settings.rerank_provider_id.is_some() {
            check_provider(
                conn,
                current.workspace_id,
                rerank_provider,
                "rerankProviderId",
            )
            .await?;
        }
        let provider = settings
            .embedding_provider_id
            .or(current.embedding_provider_id);
        let model = settings
            .embedding_model
            .as_deref()
            .map(|m| m.trim().to_string())
            .or(current.embedding_model.clone());
        // Another model makes other vectors: the dataset's are compared afresh.
        let embedding_changed =
            provider != current.embedding_provider_id || model != current.embedding_model;
        let updated: Dataset = diesel::update(datasets::table.find(current.id))
            .set((
                datasets::name.eq(name.clone().unwrap_or(current.name.clone())),
                datasets::description.eq(description.clone().or(current.description.clone())),
                datasets::indexing_technique.eq(settings
                    .indexing_technique
                    .map(str::to_string)
                    .unwrap_or(current.indexing_technique.clone())),
                datasets::similarity_threshold.eq(settings
                    .similarity_threshold
                    .map(|v| v as f32)
                    .unwrap_or(current.similarity_threshold)),
                datasets::vector_similarity_weight.eq(settings
                    .vector_similarity_weight
                    .map(|v| v as f32)
                    .unwrap_or(current.vector_similarity_weight)),
                datasets::top_k.eq(settings.top_k.unwrap_or(current.top_k)),
                datasets::embedding_provider_id.eq(provider),
                datasets::embedding_model.eq(&model),
                datasets::rerank_provider_id.eq(rerank_provider),
                datasets::rerank_model.eq(&rerank_model),
                datasets::embedding_version
                    .eq(current.embedding_version + i64::from(embedding_changed)),
            ))
            .returning(Dataset::as_returning())
            .get_result(conn)
            .await?;
        if embedding_changed {
            // The stored vectors are another model's: every document is embedded again.
            queue::enqueue_indexing_of_dataset(conn, updated.id).await?;
        }
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(updated.workspace_id),
                action: "dataset.update",
                resource_type: "dataset",
                resource_id: Some(updated.id),
                metadata: json!({}),
            },
        )
        .await?;
        Ok((updated, embedding_changed))
    })
    .await
}

pub async fn delete_dataset(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    id: Uuid,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let current = dataset_for_building(conn, actor, id).await?;
        diesel::update(datasets::table.find(current.id))
            .set(datasets::deleted_at.eq(Utc::now()))
            .execute(conn)
            .await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(current.workspace_id),
                action: "dataset.delete",
                resource_type: "dataset",
                resource_id: Some(current.id),
                metadata: json!({ "name": current.name }),
            },
        )
        .await?;
        Ok::<_, AppError>(())
    })
    .await
}

/// The live datasets among `ids` that belong to `workspace_id` (for a run of that
/// workspace), in no particular order.
pub async fn of_workspace(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    ids: &[Uuid],
) -> AppResult<Vec<Dataset>> {
    Ok(datasets::table
        .filter(datasets::id.eq_any(ids))
        .filter(datasets::workspace_id.eq(workspace_id))
        .filter(datasets::deleted_at.is_null())
        .select(Dataset::as_select())
        .load(conn)
        .await?)
}
