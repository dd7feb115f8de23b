//! Retrieval, shared by `searchDataset` and the KNOWLEDGE_RETRIEVAL node. Per dataset:
//!
//! - a metadata filter (`metadata`), when given, keeps the documents it matches, in SQL,
//!   before anything is ranked;
//! - keyword candidates: Okapi BM25 over the dataset's inverted index (`keyword`);
//! - vector candidates (HIGH_QUALITY datasets with an embedding model): the cosine between
//!   the query's embedding and the segments', from the in-memory vectors (`vectors`);
//! - both fused (`fusion`) with the dataset's `vector_similarity_weight`;
//! - a reranker (`rerank`), the node's or else the dataset's, reorders the best fused
//!   candidates: its relevance score becomes the score;
//! - kept from the threshold (the node's, else the dataset's `similarity_threshold`) up,
//!   best `top_k` of all datasets together.
//!
//! Only enabled, non-archived segments of enabled, non-archived, live documents are found;
//! the segments returned count a hit each. No database connection is held while a provider
//! embeds the query or reranks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::fusion::{self, Candidate, Fused};
use super::keyword::{self, Ranked};
use super::metadata::MetadataFilter;
use super::rerank::{self, RerankChoice};
use super::vectors::{DatasetVectors, VectorIndex};
use super::{chunk, embed};
use crate::app::App;
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor};
use crate::db::DbPool;
use crate::db::models::{Dataset, DocumentSegment};
use crate::db::schema::{datasets, document_segments, documents, parent_segments};
use crate::error::{AppError, AppResult};
use crate::llm::provider::ResolvedModel;

/// Candidates taken from each side before fusing: enough that the best `top_k` of the
/// fusion (and the reranker's candidates) are among them.
fn candidates(top_k: usize) -> i64 {
    (top_k * 10).max(100) as i64
}

/// A search's settings beyond the datasets' own.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// Results wanted (default: the largest `top_k` of the datasets).
    pub top_k: Option<usize>,
    /// Least score kept (default: each dataset's `similarity_threshold`).
    pub threshold: Option<f64>,
    /// Only segments of documents whose metadata meets it.
    pub filter: Option<MetadataFilter>,
    /// A reranker for the fused candidates of all datasets together, instead of each
    /// dataset's own.
    pub rerank: Option<RerankChoice>,
}

/// A segment found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub segment: DocumentSegment,
    /// What the model is given: the segment's text; for a child segment, its parent's;
    /// for a question, the question and its answer (`chunk`).
    pub context: String,
    pub document_name: String,
    pub document_metadata: Value,
    /// What results are ordered by: the reranker's score when reranked, else the fusion.
    pub score: f64,
    pub keyword_score: f64,
    pub vector_score: Option<f64>,
    pub rerank_score: Option<f64>,
}

/// What one dataset offers before the query is embedded.
struct Prepared<'a> {
    dataset: &'a Dataset,
    keyword: Vec<Ranked>,
    /// The documents a metadata filter keeps (`None`: no filter).
    documents: Option<HashSet<Uuid>>,
    vector: Option<(ResolvedModel, Arc<DatasetVectors>)>,
    /// The dataset's own reranker (when the search has none of its own).
    reranker: Option<ResolvedModel>,
}

/// Reads one dataset's filtered documents, keyword candidates, embedding model, vectors
/// and reranker.
async fn prepare<'a>(
    app: &App,
    conn: &mut AsyncPgConnection,
    dataset: &'a Dataset,
    query: &str,
    limit: i64,
    options: &SearchOptions,
) -> AppResult<Prepared<'a>> {
    let documents = match &options.filter {
        Some(filter) => Some(keyword::documents_matching(conn, dataset, filter).await?),
        None => None,
    };
    let keyword = match &documents {
        Some(ids) if ids.is_empty() => Vec::new(),
        _ => keyword::keyword_ranks(conn, dataset, query, limit, documents.as_deref()).await?,
    };
    let vector = match embed::embedder(app, conn, dataset).await? {
        Some(model) if documents.as_ref().is_none_or(|d| !d.is_empty()) => {
            let vectors = app
                .vectors
                .of(conn, dataset.id, dataset.embedding_version)
                .await?;
            (!vectors.is_empty()).then_some((model, vectors))
        }
        _ => None,
    };
    let reranker = match (
        &options.rerank,
        dataset.rerank_provider_id,
        &dataset.rerank_model,
    ) {
        (None, Some(provider_id), Some(model)) => {
            let choice = RerankChoice {
                provider_id,
                model: model.clone(),
            };
            Some(rerank::resolve(app, conn, dataset.workspace_id, &choice).await?)
        }
        _ => None,
    };
    Ok(Prepared {
        dataset,
        keyword,
        documents: documents.map(|d| d.into_iter().collect()),
        vector,
        reranker,
    })
}

/// The query's embedding by each model the datasets use (one call a model), asked with no
/// database connection held, and with an interactive caller's patience.
async fn embed_query(
    app: &App,
    prepared: &[Prepared<'_>],
    query: &str,
) -> AppResult<HashMap<(Uuid, String), Vec<f32>>> {
    let mut embedded = HashMap::new();
    for (model, _) in prepared.iter().filter_map(|p| p.vector.as_ref()) {
        let key = (model.provider_id, model.model.clone());
        if embedded.contains_key(&key) {
            continue;
        }
        let model = model
            .clone()
            .interactive(app.engine.config.interactive_timeout);
        let vector = embed::embed(app, &model, &[query.to_string()])
            .await?
            .pop()
            .ok_or_else(|| AppError::internal("no embedding for the query"))?;
        embedded.insert(key, vector);
    }
    Ok(embedded)
}

/// One dataset's candidates fused, best first (no threshold, no cut): the keyword side's
/// and the vector side's, each with both scores.
async fn fused(
    conn: &mut AsyncPgConnection,
    prepared: &Prepared<'_>,
    embedded: &HashMap<(Uuid, String), Vec<f32>>,
    query: &str,
    limit: i64,
) -> AppResult<Vec<Fused>> {
    let (dataset, keyword) = (prepared.dataset, &prepared.keyword);
    let Some((model, vectors)) = &prepared.vector else {
        let candidates: Vec<Candidate> = keyword
            .iter()
            .map(|r| Candidate {
                id: r.id,
                bm25: r.rank,
                cosine: None,
            })
            .collect();
        return Ok(fusion::fuse(&candidates, 0.0, false));
    };
    let key = (model.provider_id, model.model.clone());
    let query_vector = embedded.get(&key).map(Vec::as_slice).unwrap_or_default();
    let nearest = vectors.nearest(query_vector, limit as usize, prepared.documents.as_ref());
    let mut cosines: HashMap<Uuid, f64> =
        nearest.iter().map(|(id, c)| (*id, f64::from(*c))).collect();
    let keyword_only: Vec<Uuid> = keyword
        .iter()
        .map(|r| r.id)
        .filter(|id| !cosines.contains_key(id))
        .collect();
    for (id, cosine) in vectors.cosines(query_vector, &keyword_only) {
        cosines.insert(id, f64::from(cosine));
    }
    // BM25 of the vector candidates the keyword side did not return (0 for those without
    // a query term); a candidate no longer retrievable is left out.
    let mut ranks: HashMap<Uuid, f64> = keyword.iter().map(|r| (r.id, r.rank)).collect();
    let unranked: Vec<Uuid> = nearest
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !ranks.contains_key(id))
        .collect();
    let mut visible: Vec<Uuid> = keyword.iter().map(|r| r.id).collect();
    if !unranked.is_empty() {
        for r in keyword::ranks_of(conn, dataset, query, &unranked).await? {
            ranks.insert(r.id, r.rank);
            visible.push(r.id);
        }
    }
    let candidates: Vec<Candidate> = visible
        .into_iter()
        .map(|id| Candidate {
            id,
            bm25: ranks.get(&id).copied().unwrap_or(0.0),
            cosine: cosines.get(&id).copied(),
        })
        .collect();
    Ok(fusion::fuse(
        &candidates,
        f64::from(dataset.vector_similarity_weight),
        true,
    ))
}

/// A candidate on its way: fused, perhaps reranked, from dataset `dataset` (an index).
struct Pending {
    dataset: usize,
    fused: Fused,
    rerank: Option<f64>,
}

impl Pending {
    fn score(&self) -> f64 {
        self.rerank.unwrap_or(self.fused.score)
    }
}

fn by_score(list: &mut [Pending]) {
    list.sort_by(|a, b| {
        b.score()
            .total_cmp(&a.score())
            .then(a.fused.id.cmp(&b.fused.id))
    });
}

/// Reorders `group` (best fused first) by `model`: its best `rerank::candidates(top_k)`
/// are scored and kept, the rest dropped.
async fn rerank_group(
    app: &App,
    pool: &DbPool,
    model: &ResolvedModel,
    query: &str,
    mut group: Vec<Pending>,
    top_k: usize,
) -> AppResult<Vec<Pending>> {
    group.truncate(rerank::candidates(top_k));
    if group.is_empty() {
        return Ok(group);
    }
    let ids: Vec<Uuid> = group.iter().map(|c| c.fused.id).collect();
    let texts: HashMap<Uuid, String> = {
        let mut conn = pool.get().await?;
        document_segments::table
            .filter(document_segments::id.eq_any(&ids))
            .select((document_segments::id, document_segments::content))
            .load::<(Uuid, String)>(&mut conn)
            .await?
            .into_iter()
            .collect()
    };
    group.retain(|c| texts.contains_key(&c.fused.id));
    let documents: Vec<String> = group
        .iter()
        .map(|c| texts.get(&c.fused.id).cloned().unwrap_or_default())
        .collect();
    let model = model
        .clone()
        .interactive(app.engine.config.interactive_timeout);
    let scores = rerank::rerank(app, &model, query, &documents).await?;
    for (candidate, score) in group.iter_mut().zip(scores) {
        candidate.rerank = Some(score);
    }
    by_score(&mut group);
    Ok(group)
}

/// Searches `datasets` (already checked to be the caller's) for `query`: the best segments
/// of all of them together, each counted as a hit. Connections are taken from `pool` (the
/// requests' or the engine's) for the reads between the provider calls, never held while
/// a provider answers.
pub async fn search(
    app: &App,
    pool: &DbPool,
    datasets: &[Dataset],
    query: &str,
    options: &SearchOptions,
) -> AppResult<Vec<Hit>> {
    let query = query.trim();
    if query.is_empty() || datasets.is_empty() {
        return Ok(Vec::new());
    }
    let top_k = options.top_k.unwrap_or_else(|| {
        datasets
            .iter()
            .map(|d| d.top_k.max(1) as usize)
            .max()
            .unwrap_or(5)
    });
    let limit = candidates(top_k);
    let mut prepared = Vec::with_capacity(datasets.len());
    let search_reranker = {
        let mut conn = pool.get().await?;
        for dataset in datasets {
            prepared.push(prepare(app, &mut conn, dataset, query, limit, options).await?);
        }
        match &options.rerank {
            Some(choice) => {
                Some(rerank::resolve(app, &mut conn, datasets[0].workspace_id, choice).await?)
            }
            None => None,
        }
    };
    let embedded = embed_query(app, &prepared, query).await?;
    let mut groups: Vec<Vec<Pending>> = Vec::with_capacity(prepared.len());
    {
        let mut conn = pool.get().await?;
        for (index, one) in prepared.iter().enumerate() {
            let list = fused(&mut conn, one, &embedded, query, limit).await?;
            groups.push(
                list.into_iter()
                    .map(|fused| Pending {
                        dataset: index,
                        fused,
                        rerank: None,
                    })
                    .collect(),
            );
        }
    }
    let mut all: Vec<Pending> = match &search_reranker {
        Some(model) => {
            let mut merged: Vec<Pending> = groups.into_iter().flatten().collect();
            by_score(&mut merged);
            rerank_group(app, pool, model, query, merged, top_k).await?
        }
        None => {
            let mut all = Vec::new();
            for (group, one) in groups.into_iter().zip(&prepared) {
                match &one.reranker {
                    Some(model) => {
                        all.extend(rerank_group(app, pool, model, query, group, top_k).await?)
                    }
                    None => all.extend(group),
                }
            }
            all
        }
    };
    all.retain(|c| {
        let threshold = options
            .threshold
            .unwrap_or(f64::from(prepared[c.dataset].dataset.similarity_threshold));
        match c.rerank {
            Some(score) => threshold <= 0.0 || score >= threshold,
            None => c.fused.score > 0.0 && c.fused.score >= threshold,
        }
    });
    by_score(&mut all);
    let mut conn = pool.get().await?;
    let conn = &mut *conn;
    let all = one_per_parent(conn, all, top_k).await?;
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = all.iter().map(|c| c.fused.id).collect();
    let segments: Vec<DocumentSegment> =
        diesel::update(document_segments::table.filter(document_segments::id.eq_any(&ids)))
            .set(document_segments::hit_count.eq(document_segments::hit_count + 1))
            .returning(DocumentSegment::as_returning())
            .get_results(conn)
            .await?;
    let document_ids: Vec<Uuid> = segments.iter().map(|s| s.document_id).collect();
    let described: HashMap<Uuid, (String, Value)> = documents::table
        .filter(documents::id.eq_any(&document_ids))
        .select((documents::id, documents::name, documents::doc_metadata))
        .load::<(Uuid, String, Value)>(conn)
        .await?
        .into_iter()
        .map(|(id, name, metadata)| (id, (name, metadata)))
        .collect();
    let parent_ids: Vec<Uuid> = segments
        .iter()
        .filter_map(|s| s.parent_segment_id)
        .collect();
    let parents: HashMap<Uuid, String> = if parent_ids.is_empty() {
        HashMap::new()
    } else {
        parent_segments::table
            .filter(parent_segments::id.eq_any(&parent_ids))
            .select((parent_segments::id, parent_segments::content))
            .load::<(Uuid, String)>(conn)
            .await?
            .into_iter()
            .collect()
    };
    let mut by_id: HashMap<Uuid, DocumentSegment> =
        segments.into_iter().map(|s| (s.id, s)).collect();
    Ok(all
        .into_iter()
        .filter_map(|c| {
            let segment = by_id.remove(&c.fused.id)?;
            let (document_name, document_metadata) = described
                .get(&segment.document_id)
                .cloned()
                .unwrap_or_default();
            let context = match (&segment.parent_segment_id, &segment.answer) {
                (Some(parent), _) => parents
                    .get(parent)
                    .cloned()
                    .unwrap_or_else(|| segment.content.clone()),
                (None, Some(answer)) => chunk::qa_context(&segment.content, answer),
                (None, None) => segment.content.clone(),
            };
            Some(Hit {
                document_name,
                document_metadata,
                context,
                segment,
                score: c.score(),
                keyword_score: c.fused.keyword,
                vector_score: c.fused.vector,
                rerank_score: c.rerank,
            })
        })
        .collect())
}

/// The best `top_k` of `ranked` (best first), a child segment counted only when no
/// better child of the same parent came before it (its parent is what is given).
async fn one_per_parent(
    conn: &mut AsyncPgConnection,
    mut ranked: Vec<Pending>,
    top_k: usize,
) -> AppResult<Vec<Pending>> {
    let ids: Vec<Uuid> = ranked.iter().map(|c| c.fused.id).collect();
    let parent_of: HashMap<Uuid, Uuid> = document_segments::table
        .filter(document_segments::id.eq_any(&ids))
        .filter(document_segments::parent_segment_id.is_not_null())
        .select((document_segments::id, document_segments::parent_segment_id))
        .load::<(Uuid, Option<Uuid>)>(conn)
        .await?
        .into_iter()
        .filter_map(|(id, parent)| Some((id, parent?)))
        .collect();
    if parent_of.is_empty() {
        ranked.truncate(top_k);
        return Ok(ranked);
    }
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut kept = Vec::with_capacity(top_k);
    for candidate in ranked {
        if kept.len() == top_k {
            break;
        }
        if let Some(parent) = parent_of.get(&candidate.fused.id)
            && !seen.insert(*parent)
        {
            continue;
        }
        kept.push(candidate);
    }
    Ok(kept)
}

/// `searchDataset`: a builder (READ in the dataset's workspace) searches one dataset,
/// its documents narrowed by `filter` (a list of metadata conditions) when given.
pub async fn search_dataset(
    app: &App,
    actor: Actor,
    dataset_id: Uuid,
    query: &str,
    top_k: Option<i32>,
    filter: Option<&Value>,
) -> AppResult<Vec<Hit>> {
    if query.trim().is_empty() {
        return Err(AppError::bad_input("query", "query is empty"));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::bad_input(
            "query",
            format!("query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let top_k = match top_k {
        Some(k) if !(1..=100).contains(&k) => {
            return Err(AppError::bad_input("topK", "topK is between 1 and 100"));
        }
        k => k.map(|k| k as usize),
    };
    let filter = match filter {
        Some(f) => {
            MetadataFilter::parse(f).map_err(|message| AppError::bad_input("filter", message))?
        }
        None => None,
    };
    let user_id = actor.user_id()?;
    let dataset: Dataset = {
        let mut conn = app.pool.get().await?;
        let dataset: Dataset = datasets::table
            .find(dataset_id)
            .filter(datasets::deleted_at.is_null())
            .filter(datasets::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .select(Dataset::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("dataset"))?;
        authorize_workspace(&mut conn, actor, dataset.workspace_id, Action::Read).await?;
        dataset
    };
    let options = SearchOptions {
        top_k,
        filter,
        ..SearchOptions::default()
    };
    search(app, &app.pool, &[dataset], query, &options).await
}

/// The longest query searched, in characters.
pub const MAX_QUERY_CHARS: usize = 2000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enough_candidates_are_taken() {
        assert_eq!(candidates(5), 100);
        assert_eq!(candidates(30), 300);
    }
}
