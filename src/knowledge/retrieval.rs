//! Retrieval, shared by `searchDataset` and the KNOWLEDGE_RETRIEVAL node. Per dataset:
//!
//! - keyword score: Okapi BM25 (k1 = 1.2, b = 0.75) of the segment for the query's terms,
//!   from the dataset's inverted index in PostgreSQL (`segment_terms`, `dataset_terms` and
//!   the dataset's segment count and total length, kept by triggers in the transaction that
//!   writes a segment, migration 000026): every segment holding a query term is scored;
//!   divided by the best score of the query in the dataset, so the best keyword match
//!   scores 1;
//! - vector score (HIGH_QUALITY datasets with an embedding model): the cosine between the
//!   query's embedding and the segment's, from the in-memory vectors (`vectors`);
//! - combined as `w × vector + (1 − w) × keyword` with the dataset's
//!   `vector_similarity_weight` (keyword score alone for a keyword-only dataset), kept from
//!   `similarity_threshold` up, best `top_k`.
//!
//! Only enabled, non-archived segments of enabled, non-archived, live documents are found;
//! the segments returned count a hit each.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::embed;
use super::vectors::DatasetVectors;
use crate::app::App;
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor};
use crate::db::DbPool;
use crate::db::models::{Dataset, DocumentSegment};
use crate::db::schema::{datasets, document_segments, documents};
use crate::error::{AppError, AppResult};
use crate::llm::provider::ResolvedModel;

/// Candidates taken from each side before combining: enough that the best `top_k` of the
/// combination are among them.
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
}

/// A segment found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub segment: DocumentSegment,
    pub document_name: String,
    pub score: f64,
    pub keyword_score: f64,
    pub vector_score: Option<f64>,
}

#[derive(QueryableByName)]
struct Ranked {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Double)]
    rank: f64,
}

/// Conditions every retrievable segment `s` (of document `d`) meets.
const RETRIEVABLE: &str = "s.enabled AND NOT s.archived AND d.enabled AND NOT d.archived \
     AND d.deleted_at IS NULL AND d.workspace_id = s.workspace_id";

/// Okapi BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// Okapi BM25's length normalization.
const B: f64 = 0.75;

/// The query's terms (`$3`, parsed as segments are: English stems, no stop words), each
/// weighted by its inverse document frequency in dataset `$2` (BM25's
/// `ln(1 + (N − n + 0.5) / (n + 0.5))`) times its repeats in the query, and the dataset's
/// average segment length: `WITH stats, w` for the statements below. Each term's postings
/// are then read by the index, one term at a time (`OFFSET 0` keeps the subquery a loop),
/// whatever the table statistics say.
const QUERY_TERMS: &str = "WITH stats AS ( \
       SELECT indexed_segments::float8 AS n, \
              GREATEST(indexed_length::float8 / GREATEST(indexed_segments, 1), 1) AS avgdl \
       FROM datasets WHERE id = $2), \
     q AS ( \
       SELECT u.lexeme AS term, coalesce(array_length(u.positions, 1), 1) AS repeats \
       FROM unnest(to_tsvector('english', $3)) u), \
     w AS MATERIALIZED ( \
       SELECT q.term, q.repeats * ln(1 + (stats.n - t.document_frequency + 0.5) \
                                         / (t.document_frequency + 0.5)) AS idf \
       FROM q JOIN dataset_terms t ON t.dataset_id = $2 AND t.term = q.term, stats)";

/// A posting `p`'s part of a segment's score.
fn term_score() -> String {
    format!(
        "w.idf * p.frequency * {k1p1} / (p.frequency + {k1} * ({one_b} + {B} * p.segment_length / stats.avgdl))",
        k1p1 = K1 + 1.0,
        k1 = K1,
        one_b = 1.0 - B,
    )
}

/// The dataset's `limit` best segments for the query by BM25, from the postings of the
/// query's terms (`segment_terms`, which holds retrievable segments only): every segment
/// holding any of the terms is scored, so none is left out whatever the order of rows.
async fn keyword_ranks(
    conn: &mut AsyncPgConnection,
    dataset: &Dataset,
    query: &str,
    limit: i64,
) -> AppResult<Vec<Ranked>> {
    let sql = format!(
        "{QUERY_TERMS} \
         SELECT p.segment_id AS id, sum({score})::float8 AS rank \
         FROM w CROSS JOIN LATERAL ( \
           SELECT p.segment_id, p.frequency, p.segment_length FROM segment_terms p \
           WHERE p.workspace_id = $1 AND p.dataset_id = $2 AND p.term = w.term OFFSET 0) p, stats \
         GROUP BY p.segment_id ORDER BY rank DESC, p.segment_id LIMIT $4",
        score = term_score(),
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dataset.workspace_id)
        .bind::<SqlUuid, _>(dataset.id)
        .bind::<Text, _>(query)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?)
}

/// BM25 scores of given segments (0 where none of the words occur), retrievable ones only.
async fn ranks_of(
    conn: &mut AsyncPgConnection,
    dataset: &Dataset,
    query: &str,
    ids: &[Uuid],
) -> AppResult<Vec<Ranked>> {
    let sql = format!(
        "{QUERY_TERMS} \
         SELECT s.id, coalesce((SELECT sum({score}) FROM segment_terms p JOIN w ON p.term = w.term \
                                WHERE p.segment_id = s.id), 0)::float8 AS rank \
         FROM document_segments s JOIN documents d ON d.id = s.document_id, stats \
         WHERE s.workspace_id = $1 AND s.dataset_id = $2 AND s.id = ANY($4) AND {RETRIEVABLE}",
        score = term_score(),
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dataset.workspace_id)
        .bind::<SqlUuid, _>(dataset.id)
        .bind::<Text, _>(query)
        .bind::<Array<SqlUuid>, _>(ids)
        .load(conn)
        .await?)
}

/// What one dataset offers before the query is embedded: its keyword candidates, and its
/// embedding model and vectors when it is searched by vector too.
struct Prepared<'a> {
    dataset: &'a Dataset,
    keyword: Vec<Ranked>,
    vector: Option<(ResolvedModel, Arc<DatasetVectors>)>,
}

/// Reads one dataset's keyword candidates, embedding model and vectors.
async fn prepare<'a>(
    app: &App,
    conn: &mut AsyncPgConnection,
    dataset: &'a Dataset,
    query: &str,
    limit: i64,
) -> AppResult<Prepared<'a>> {
    let keyword = keyword_ranks(conn, dataset, query, limit).await?;
    let vector = match embed::embedder(app, conn, dataset).await? {
        Some(model) => {
            let vectors = app
                .vectors
                .of(conn, dataset.id, dataset.embedding_version)
                .await?;
            (!vectors.is_empty()).then_some((model, vectors))
        }
        None => None,
    };
    Ok(Prepared {
        dataset,
        keyword,
        vector,
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

/// Scores of one dataset's best segments: (id, score, keyword, vector).
async fn score(
    conn: &mut AsyncPgConnection,
    prepared: &Prepared<'_>,
    embedded: &HashMap<(Uuid, String), Vec<f32>>,
    query: &str,
    top_k: usize,
    threshold: f64,
) -> AppResult<Vec<(Uuid, f64, f64, Option<f64>)>> {
    let (dataset, keyword) = (prepared.dataset, &prepared.keyword);
    let limit = candidates(top_k);
    let mut scores: HashMap<Uuid, (f64, Option<f64>)> =
        keyword.iter().map(|r| (r.id, (r.rank, None))).collect();
    let weight = match &prepared.vector {
        Some((model, vectors)) => {
            let key = (model.provider_id, model.model.clone());
            let query_vector = embedded.get(&key).map(Vec::as_slice).unwrap_or_default();
            let nearest = vectors.nearest(query_vector, limit as usize);
            let unranked: Vec<Uuid> = nearest
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !scores.contains_key(id))
                .collect();
            let mut visible: HashMap<Uuid, f64> = keyword.iter().map(|r| (r.id, r.rank)).collect();
            if !unranked.is_empty() {
                for r in ranks_of(conn, dataset, query, &unranked).await? {
                    visible.insert(r.id, r.rank);
                }
            }
            for (id, cosine) in nearest {
                // Found by vector but no longer retrievable (disabled, archived).
                let Some(rank) = visible.get(&id) else {
                    continue;
                };
                scores.insert(id, (*rank, Some(f64::from(cosine).clamp(0.0, 1.0))));
            }
            f64::from(dataset.vector_similarity_weight)
        }
        None => 0.0,
    };
    let best_rank = scores
        .values()
        .map(|(rank, _)| *rank)
        .fold(0.0f64, f64::max);
    let mut scored: Vec<(Uuid, f64, f64, Option<f64>)> = scores
        .into_iter()
        .map(|(id, (rank, vector))| {
            let keyword = if best_rank > 0.0 {
                rank / best_rank
            } else {
                0.0
            };
            let score = match vector {
                Some(v) => weight * v + (1.0 - weight) * keyword,
                None if weight > 0.0 => (1.0 - weight) * keyword,
                None => keyword,
            };
            (id, score, keyword, vector)
        })
        .filter(|(_, score, _, _)| *score > 0.0 && *score >= threshold)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(top_k);
    Ok(scored)
}

/// Searches `datasets` (already checked to be the caller's) for `query`: the best segments
/// of all of them together, each counted as a hit. Connections are taken from `pool` (the
/// requests' or the engine's) for the reads before and after the query's embedding, never
/// held while a provider answers.
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
    {
        let mut conn = pool.get().await?;
        for dataset in datasets {
            prepared.push(prepare(app, &mut conn, dataset, query, limit).await?);
        }
    }
    let embedded = embed_query(app, &prepared, query).await?;
    let mut conn = pool.get().await?;
    let conn = &mut *conn;
    let mut all: Vec<(Uuid, f64, f64, Option<f64>)> = Vec::new();
    for one in &prepared {
        let threshold = options
            .threshold
            .unwrap_or(f64::from(one.dataset.similarity_threshold));
        all.extend(score(conn, one, &embedded, query, top_k, threshold).await?);
    }
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(top_k);
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = all.iter().map(|h| h.0).collect();
    let segments: Vec<DocumentSegment> =
        diesel::update(document_segments::table.filter(document_segments::id.eq_any(&ids)))
            .set(document_segments::hit_count.eq(document_segments::hit_count + 1))
            .returning(DocumentSegment::as_returning())
            .get_results(conn)
            .await?;
    let document_ids: Vec<Uuid> = segments.iter().map(|s| s.document_id).collect();
    let names: HashMap<Uuid, String> = documents::table
        .filter(documents::id.eq_any(&document_ids))
        .select((documents::id, documents::name))
        .load::<(Uuid, String)>(conn)
        .await?
        .into_iter()
        .collect();
    let mut by_id: HashMap<Uuid, DocumentSegment> =
        segments.into_iter().map(|s| (s.id, s)).collect();
    Ok(all
        .into_iter()
        .filter_map(|(id, score, keyword_score, vector_score)| {
            let segment = by_id.remove(&id)?;
            Some(Hit {
                document_name: names.get(&segment.document_id).cloned().unwrap_or_default(),
                segment,
                score,
                keyword_score,
                vector_score,
            })
        })
        .collect())
}

/// `searchDataset`: a builder (READ in the dataset's workspace) searches one dataset.
pub async fn search_dataset(
    app: &App,
    actor: Actor,
    dataset_id: Uuid,
    query: &str,
    top_k: Option<i32>,
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
        threshold: None,
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
