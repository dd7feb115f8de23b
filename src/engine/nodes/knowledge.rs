//! KNOWLEDGE_RETRIEVAL nodes.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{NodeContext, NodeOutput, text};
use crate::engine::template::Vars;

/// KNOWLEDGE_RETRIEVAL: the best segments of the node's datasets (of the run's workspace)
/// for its query; `context` joins their text for a prompt.
pub async fn run(ctx: &NodeContext<'_>, config: &Value, vars: &Vars) -> Result<NodeOutput, String> {
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
