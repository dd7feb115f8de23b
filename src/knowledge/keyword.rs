//! Keyword ranking: Okapi BM25 (k1 = 1.2, b = 0.75) of a dataset's segments for a query's
//! terms, from the dataset's inverted index in PostgreSQL (`segment_terms`, and the
//! dataset's segment count and total length in `dataset_statistics`, kept by triggers in
//! the transaction that writes a segment, migrations 000026 and 000028). Every segment
//! holding a query term is scored, so none is left out whatever the order of rows.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::metadata::MetadataFilter;
use crate::db::models::Dataset;
use crate::error::AppResult;

#[derive(QueryableByName)]
pub struct Ranked {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Double)]
    pub rank: f64,
}

/// Conditions every retrievable segment `s` (of document `d`) meets.
pub const RETRIEVABLE: &str = "s.enabled AND NOT s.archived AND d.enabled AND NOT d.archived \
     AND d.deleted_at IS NULL AND d.workspace_id = s.workspace_id";

/// Okapi BM25's term-frequency saturation.
const K1: f64 = 1.2;
/// Okapi BM25's length normalization.
const B: f64 = 0.75;

/// The query's terms (`$3`, parsed as segments are: English stems, no stop words), each
/// weighted by its inverse document frequency in dataset `$2` (BM25's
/// `ln(1 + (N − n + 0.5) / (n + 0.5))`, `n` the number of the term's postings, counted
/// here) times its repeats in the query, and the dataset's segment count `N` and average
/// segment length (sums of its `dataset_statistics` rows): `WITH stats, w` for the
/// statements below. Each term's postings are then read by the index, one term at a time
/// (`OFFSET 0` keeps the subquery a loop), whatever the table statistics say.
const QUERY_TERMS: &str = "WITH stats AS ( \
       SELECT coalesce(sum(indexed_segments), 0)::float8 AS n, \
              GREATEST(coalesce(sum(indexed_length), 0)::float8 \
                       / GREATEST(coalesce(sum(indexed_segments), 0), 1), 1) AS avgdl \
       FROM dataset_statistics WHERE dataset_id = $2), \
     q AS ( \
       SELECT u.lexeme AS term, coalesce(array_length(u.positions, 1), 1) AS repeats \
       FROM unnest(to_tsvector('english', $3)) u), \
     w AS MATERIALIZED ( \
       SELECT q.term, q.repeats * ln(1 + (stats.n - c.n + 0.5) / (c.n + 0.5)) AS idf \
       FROM q CROSS JOIN stats CROSS JOIN LATERAL ( \
         SELECT count(*)::float8 AS n FROM segment_terms p \
         WHERE p.workspace_id = $1 AND p.dataset_id = $2 AND p.term = q.term) c \
       WHERE c.n > 0)";

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
/// With `documents`, only segments of those documents (the ones a metadata filter keeps).
pub async fn keyword_ranks(
    conn: &mut AsyncPgConnection,
    dataset: &Dataset,
    query: &str,
    limit: i64,
    documents: Option<&[Uuid]>,
) -> AppResult<Vec<Ranked>> {
    let only = if documents.is_some() {
        "JOIN document_segments s ON s.id = p.segment_id AND s.document_id = ANY($5)"
    } else {
        ""
    };
    let sql = format!(
        "{QUERY_TERMS} \
         SELECT p.segment_id AS id, sum({score})::float8 AS rank \
         FROM w CROSS JOIN LATERAL ( \
           SELECT p.segment_id, p.frequency, p.segment_length FROM segment_terms p \
           WHERE p.workspace_id = $1 AND p.dataset_id = $2 AND p.term = w.term OFFSET 0) p \
         {only} CROSS JOIN stats \
         GROUP BY p.segment_id ORDER BY rank DESC, p.segment_id LIMIT $4",
        score = term_score(),
    );
    let statement = diesel::sql_query(sql)
        .into_boxed()
        .bind::<SqlUuid, _>(dataset.workspace_id)
        .bind::<SqlUuid, _>(dataset.id)
        .bind::<Text, _>(query)
        .bind::<BigInt, _>(limit);
    let statement = match documents {
        Some(ids) => statement.bind::<Array<SqlUuid>, _>(ids.to_vec()),
        None => statement,
    };
    Ok(statement.load(conn).await?)
}

/// The live documents of a dataset whose metadata meets `filter` (evaluated in
/// PostgreSQL by `weft_metadata_matches`).
pub async fn documents_matching(
    conn: &mut AsyncPgConnection,
    dataset: &Dataset,
    filter: &MetadataFilter,
) -> AppResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let rows: Vec<Id> = diesel::sql_query(
        "SELECT d.id FROM documents d WHERE d.workspace_id = $1 AND d.dataset_id = $2 \
           AND d.deleted_at IS NULL AND weft_metadata_matches(d.doc_metadata, $3)",
    )
    .bind::<SqlUuid, _>(dataset.workspace_id)
    .bind::<SqlUuid, _>(dataset.id)
    .bind::<Jsonb, _>(filter.as_json())
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// BM25 scores of given segments (0 where none of the words occur), retrievable ones only.
pub async fn ranks_of(
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
