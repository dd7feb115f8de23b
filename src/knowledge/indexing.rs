//! Indexing a document, as a job of the durable queue (kind INDEX): PARSING (its text, from
//! the document or its file), SPLITTING (cleaned, cut into segments, keywords), INDEXING
//! (embeddings in batches, for HIGH_QUALITY datasets with an embedding model), then the
//! segments replaced in one transaction with the document's and dataset's counters, and
//! COMPLETED. Each step is written to the document (`indexing_status`, `progress`,
//! `progress_msg`) and published to `documentIndexing`. A failure ends in ERROR with the
//! reason; an edit made while a job runs makes it start over (it checks before writing);
//! a job whose instance stopped is taken again, up to three attempts.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::chunk::{self, ChunkMode, Chunks};
use super::split::{Piece, SplitRule};
use super::{embed, extract, text, tokens};
use crate::app::App;
use crate::db::models::{Dataset, Document};
use crate::db::schema::{datasets, document_segments, documents, file_references, parent_segments};
use crate::engine::queue::{self, Job};
use crate::engine::{Cancel, RunHandle};
use crate::error::{AppError, AppResult};

/// Attempts of a job whose instance stopped before it is given up.
const ATTEMPTS: i32 = 3;
/// Keywords kept per segment.
const KEYWORDS: usize = 10;
/// Segments written per INSERT statement.
const INSERT_BATCH: usize = 500;

/// How an indexing ended, when it did not fail.
enum Ended {
    /// Segments written, COMPLETED.
    Indexed,
    /// Told to start over (edited meanwhile), or stopped: back in the queue.
    Again,
    /// The document or its dataset was deleted meanwhile.
    Gone,
}

/// A failure the builder reads on the document.
struct Failure(String);

impl From<AppError> for Failure {
    fn from(error: AppError) -> Failure {
        match error {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "indexing failed");
                Failure("the document could not be indexed (internal error)".into())
            }
            other => Failure(other.to_string()),
        }
    }
}

/// Runs a claimed INDEX job.
pub async fn run_job(app: &App, job: Job) {
    let Some(document_id) = job.document_id else {
        return;
    };
    let handle = app.engine.register(document_id);
    if job.stop_requested {
        handle.cancel(Cancel::Stop);
    }
    let result = index(app, &job, document_id, &handle).await;
    let outcome = match (handle.reason(), result) {
        (Some(Cancel::LeaseLost), _) => Ok(()),
        (Some(Cancel::Stop | Cancel::Shutdown), Ok(Ended::Indexed)) => Ok(()),
        (Some(Cancel::Stop | Cancel::Shutdown), _) | (None, Ok(Ended::Again)) => {
            again(app, job.id).await
        }
        (None, Ok(Ended::Indexed)) => Ok(()),
        (None, Ok(Ended::Gone)) => remove(app, job.id).await,
        (None, Err(Failure(reason))) => fail(app, job.id, document_id, &reason).await,
    };
    if let Err(e) = outcome {
        tracing::error!(%document_id, error = ?e, "cannot record the end of an indexing");
    }
    app.engine.unregister(document_id);
}

/// A job whose instance stopped: taken again, or given up after `ATTEMPTS`.
pub async fn recover(app: &App, job: &Job) -> AppResult<()> {
    let Some(document_id) = job.document_id else {
        return Ok(());
    };
    if job.attempts < ATTEMPTS {
        tracing::warn!(%document_id, "indexing again a document whose instance stopped");
        again(app, job.id).await
    } else {
        fail(
            app,
            job.id,
            document_id,
            "interrupted: the instance indexing it stopped, three times",
        )
        .await
    }
}

async fn again(app: &App, job_id: Uuid) -> AppResult<()> {
    let mut conn = app.engine.pool.get().await?;
    queue::release(&mut conn, job_id).await?;
    drop(conn);
    crate::engine::worker::wake_workers(app).await;
    Ok(())
}

async fn remove(app: &App, job_id: Uuid) -> AppResult<()> {
    let mut conn = app.engine.pool.get().await?;
    queue::remove(&mut conn, job_id).await
}

/// Ends the indexing in ERROR (the segments already there stay) and removes the job.
async fn fail(app: &App, job_id: Uuid, document_id: Uuid, reason: &str) -> AppResult<()> {
    let mut conn = app.engine.pool.get().await?;
    let document = conn
        .transaction(async |conn| {
            let document: Option<Document> = diesel::update(documents::table.find(document_id))
                .set((
                    documents::indexing_status.eq("ERROR"),
                    documents::error.eq(Some(reason)),
                    documents::progress_msg.eq(Some(format!("Failed: {reason}"))),
                    documents::process_duration.eq(elapsed_sql()),
                ))
                .returning(Document::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            queue::remove(conn, job_id).await?;
            Ok::<_, AppError>(document)
        })
        .await?;
    drop(conn);
    if let Some(document) = document {
        publish(app, &document).await;
    }
    Ok(())
}

fn elapsed_sql()
-> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Double>> {
    diesel::dsl::sql(
        "GREATEST(EXTRACT(EPOCH FROM (now() - COALESCE(process_begin_at, now())))::float8, 0)",
    )
}

async fn publish(app: &App, document: &Document) {
    if let Err(e) = app.realtime.document_changed(document).await {
        tracing::warn!(document_id = %document.id, error = ?e, "cannot announce indexing progress");
    }
}

/// Writes a step of the indexing and announces it.
async fn advance(
    app: &App,
    document_id: Uuid,
    status: &str,
    progress: f32,
    message: String,
    begin: bool,
) -> Result<(), Failure> {
    let mut conn = app.engine.pool.get().await.map_err(AppError::from)?;
    let update = diesel::update(documents::table.find(document_id));
    let document: Document = if begin {
        update
            .set((
                documents::indexing_status.eq(status),
                documents::progress.eq(progress),
                documents::progress_msg.eq(Some(message)),
                documents::error.eq(None::<String>),
                documents::process_begin_at.eq(Some(Utc::now())),
                documents::process_duration.eq(None::<f64>),
            ))
            .returning(Document::as_returning())
            .get_result(&mut conn)
            .await
    } else {
        update
            .set((
                documents::indexing_status.eq(status),
                documents::progress.eq(progress),
                documents::progress_msg.eq(Some(message)),
            ))
            .returning(Document::as_returning())
            .get_result(&mut conn)
            .await
    }
    .map_err(AppError::from)?;
    drop(conn);
    publish(app, &document).await;
    Ok(())
}

/// What indexing reads: the document, its dataset, its source and rule.
struct Source {
    document: Document,
    dataset: Dataset,
    text: Option<String>,
    rule: SplitRule,
    mode: ChunkMode,
}

async fn source(conn: &mut AsyncPgConnection, document_id: Uuid) -> AppResult<Option<Source>> {
    let found: Option<(Document, Option<String>, serde_json::Value)> = documents::table
        .find(document_id)
        .filter(documents::deleted_at.is_null())
        .select((
            Document::as_select(),
            documents::source_text,
            documents::process_rule,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((document, text, rule)) = found else {
        return Ok(None);
    };
    let dataset: Option<Dataset> = datasets::table
        .find(document.dataset_id)
        .filter(datasets::deleted_at.is_null())
        .filter(datasets::workspace_id.eq(document.workspace_id))
        .select(Dataset::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(dataset) = dataset else {
        return Ok(None);
    };
    let rule = serde_json::from_value(rule).unwrap_or_default();
    Ok(Some(Source {
        mode: ChunkMode::of(&document.chunk_mode),
        document,
        dataset,
        text,
        rule,
    }))
}

/// The document's bytes and their media type: its own text (CSV for a QA document), or
/// its file.
async fn read_source(app: &App, source: &Source) -> Result<(Vec<u8>, String), Failure> {
    if let Some(text) = &source.text {
        let mime_type = match source.mode {
            ChunkMode::Qa => "text/csv",
            _ => "text/plain",
        };
        return Ok((text.clone().into_bytes(), mime_type.into()));
    }
    let Some(file_id) = source.document.file_id else {
        return Err(Failure(
            "the document has no text and its file was deleted".into(),
        ));
    };
    let mut conn = app.engine.pool.get().await.map_err(AppError::from)?;
    let file: Option<(String, String)> = file_references::table
        .find(file_id)
        .filter(file_references::workspace_id.eq(source.document.workspace_id))
        .select((file_references::storage_key, file_references::mime_type))
        .first(&mut conn)
        .await
        .optional()
        .map_err(AppError::from)?;
    drop(conn);
    let Some((key, mime_type)) = file else {
        return Err(Failure("the document's file was deleted".into()));
    };
    let bytes = app
        .store
        .get(&key)
        .await
        .map_err(|e| Failure::from(AppError::internal(e)))?;
    Ok((bytes.to_vec(), mime_type))
}

/// The document's segments in its chunk mode, from its bytes. CPU-bound (PDF and
/// spreadsheets especially): called off the async workers.
fn chunks_of(
    mode: ChunkMode,
    rule: SplitRule,
    mime_type: &str,
    bytes: &[u8],
) -> Result<Chunks, String> {
    if mode == ChunkMode::Qa {
        return chunk::question_answer(&extract::rows_of(mime_type, bytes)?);
    }
    let cleaned = text::clean(&extract::text_of(mime_type, bytes)?);
    Ok(match mode {
        ChunkMode::ParentChild => chunk::parent_child(&cleaned, rule),
        _ => chunk::general(&cleaned, rule),
    })
}

/// A segment ready to be written.
struct NewSegment {
    piece: Piece,
    /// Its parent (an index into the parents written with it).
    parent: Option<usize>,
    answer: Option<String>,
    /// Words of its text (and answer).
    words: usize,
    keywords: Vec<String>,
    embedding: Option<Vec<f32>>,
}

async fn index(
    app: &App,
    job: &Job,
    document_id: Uuid,
    handle: &RunHandle,
) -> Result<Ended, Failure> {
    let mut conn = app.engine.pool.get().await.map_err(AppError::from)?;
    let Some(source) = source(&mut conn, document_id).await? else {
        return Ok(Ended::Gone);
    };
    drop(conn);
    advance(
        app,
        document_id,
        "PARSING",
        0.05,
        "Reading the text".into(),
        true,
    )
    .await?;
    let (bytes, mime_type) = read_source(app, &source).await?;
    if handle.token.is_cancelled() {
        return Ok(Ended::Again);
    }

    advance(
        app,
        document_id,
        "SPLITTING",
        0.15,
        "Splitting into segments".into(),
        false,
    )
    .await?;
    let (rule, mode) = (source.rule, source.mode);
    let (parents, mut segments) = tokio::task::spawn_blocking(move || {
        let chunks = chunks_of(mode, rule, &mime_type, &bytes)?;
        let segments = chunks
            .segments
            .into_iter()
            .map(|chunk| {
                let words = text::word_count(&chunk.piece.content)
                    + chunk.answer.as_deref().map_or(0, text::word_count);
                NewSegment {
                    keywords: text::keywords(&chunk.piece.content, KEYWORDS),
                    words,
                    piece: chunk.piece,
                    parent: chunk.parent,
                    answer: chunk.answer,
                    embedding: None,
                }
            })
            .collect::<Vec<_>>();
        Ok::<_, String>((chunks.parents, segments))
    })
    .await
    .map_err(|e| Failure::from(AppError::internal(e)))?
    .map_err(Failure)?;
    if segments.is_empty() {
        return Err(Failure("the document has no text to index".into()));
    }
    if handle.token.is_cancelled() {
        return Ok(Ended::Again);
    }

    let total = segments.len();
    let mut conn = app.engine.pool.get().await.map_err(AppError::from)?;
    let embedder = embed::embedder(app, &mut conn, &source.dataset).await?;
    drop(conn);
    match embedder {
        Some(model) => {
            advance(
                app,
                document_id,
                "INDEXING",
                0.2,
                format!("Embedding {total} segments with {}", model.model),
                false,
            )
            .await?;
            let mut done = 0;
            for batch in segments.chunks_mut(embed::BATCH) {
                let texts: Vec<String> = batch.iter().map(|s| s.piece.content.clone()).collect();
                let vectors = tokio::select! {
                    vectors = embed::embed(app, &model, &texts) => vectors?,
                    () = handle.token.cancelled() => return Ok(Ended::Again),
                };
                for (segment, vector) in batch.iter_mut().zip(vectors) {
                    segment.embedding = Some(vector);
                }
                done += batch.len();
                let progress = 0.2 + 0.75 * done as f32 / total as f32;
                advance(
                    app,
                    document_id,
                    "INDEXING",
                    progress,
                    format!("Embedded {done} of {total} segments"),
                    false,
                )
                .await?;
            }
        }
        None => {
            advance(
                app,
                document_id,
                "INDEXING",
                0.6,
                format!("Indexing {total} segments for keyword search"),
                false,
            )
            .await?;
        }
    }
    let mut conn = app.engine.pool.get().await.map_err(AppError::from)?;
    let written = write(&mut conn, job, &source, &parents, &segments).await?;
    drop(conn);
    if let Written::Indexed(document) = &written {
        publish(app, document).await;
        keep_statistics(app).await;
    }
    Ok(match written {
        Written::Indexed(_) => Ended::Indexed,
        Written::Again => Ended::Again,
        Written::Gone => Ended::Gone,
    })
}

/// Searches are planned from table statistics: without them, right after a large
/// ingestion, PostgreSQL scanned a dataset's segments instead of using the full-text index
/// (measured: 16 s instead of 5 ms for one query over 114,000 segments), and joined
/// documents as if there were one. Autovacuum keeps statistics current where it runs, but
/// it may be off or behind, so after an indexing the segments, documents and keyword index
/// tables are analyzed when a tenth of one (at least 1,000 segments, 10,000 postings, or 50
/// documents) changed since its last ANALYZE (autovacuum's own rule), by one instance at a
/// time. The postings are vacuumed too: a search reads them by index only, which visits
/// the table for every row until a VACUUM marks its pages all-visible (measured over
/// 114,000 segments: keyword search p99 58 ms before, 22 ms after).
async fn keep_statistics(app: &App) {
    #[derive(QueryableByName)]
    struct Stale {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table: String,
    }
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let result: AppResult<()> = async {
        let mut conn = app.engine.pool.get().await?;
        let stale: Vec<Stale> = diesel::sql_query(
            "SELECT relname::text AS table FROM pg_stat_user_tables \
             WHERE (relid = 'document_segments'::regclass \
                    AND n_mod_since_analyze > GREATEST(1000, 0.1 * n_live_tup)) \
                OR (relid = 'segment_terms'::regclass \
                    AND n_mod_since_analyze > GREATEST(10000, 0.1 * n_live_tup)) \
                OR (relid = 'documents'::regclass \
                    AND n_mod_since_analyze > GREATEST(50, 0.1 * n_live_tup))",
        )
        .load(&mut conn)
        .await?;
        if stale.is_empty() {
            return Ok(());
        }
        // VACUUM runs outside a transaction: the lock is the session's, released below.
        let lock: Locked = diesel::sql_query(
            "SELECT pg_try_advisory_lock(hashtext('weft.analyze.knowledge')) AS locked",
        )
        .get_result(&mut conn)
        .await?;
        if !lock.locked {
            return Ok(());
        }
        let mut outcome = Ok(());
        for table in stale {
            // Only the names the query above can return.
            let statement = match table.table.as_str() {
                "documents" => "ANALYZE documents",
                "segment_terms" => "VACUUM (ANALYZE) segment_terms",
                _ => "ANALYZE document_segments",
            };
            if let Err(e) = diesel::sql_query(statement).execute(&mut conn).await {
                outcome = Err(e.into());
                break;
            }
        }
        diesel::sql_query("SELECT pg_advisory_unlock(hashtext('weft.analyze.knowledge'))")
            .execute(&mut conn)
            .await?;
        outcome
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = ?e, "cannot refresh the statistics of knowledge tables");
    }
}

/// What `write` did.
enum Written {
    Indexed(Box<Document>),
    /// Told to start over: nothing written.
    Again,
    /// The document was deleted meanwhile: nothing written.
    Gone,
}

/// Replaces the document's segments and counters in one transaction, unless the job was
/// told to start over or the document was deleted: then nothing is written.
async fn write(
    conn: &mut AsyncPgConnection,
    job: &Job,
    source: &Source,
    parents: &[Piece],
    segments: &[NewSegment],
) -> Result<Written, Failure> {
    let document = &source.document;
    let result = conn
        .transaction(async |conn| {
            match queue::stop_requested_locked(conn, job.id).await? {
                Some(false) => {}
                Some(true) => return Ok::<_, AppError>(Written::Again),
                None => return Ok(Written::Gone),
            }
            // The counters as they are now (not as read at the start).
            let (old_words, old_tokens, deleted): (i32, i32, bool) = documents::table
                .find(document.id)
                .select((
                    documents::word_count,
                    documents::tokens,
                    documents::deleted_at.is_not_null(),
                ))
                .for_no_key_update()
                .first(conn)
                .await?;
            if deleted {
                return Ok(Written::Gone);
            }
            let had_embeddings: bool = diesel::select(diesel::dsl::exists(
                document_segments::table
                    .filter(document_segments::document_id.eq(document.id))
                    .filter(document_segments::embedding.is_not_null()),
            ))
            .get_result(conn)
            .await?;
            diesel::delete(
                document_segments::table.filter(document_segments::document_id.eq(document.id)),
            )
            .execute(conn)
            .await?;
            diesel::delete(
                parent_segments::table.filter(parent_segments::document_id.eq(document.id)),
            )
            .execute(conn)
            .await?;
            let mut parent_ids: Vec<Uuid> = Vec::with_capacity(parents.len());
            for (batch_index, batch) in parents.chunks(INSERT_BATCH).enumerate() {
                let rows: Vec<_> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        (
                            parent_segments::workspace_id.eq(document.workspace_id),
                            parent_segments::dataset_id.eq(document.dataset_id),
                            parent_segments::document_id.eq(document.id),
                            parent_segments::position.eq((batch_index * INSERT_BATCH + i) as i32),
                            parent_segments::content.eq(&p.content),
                            parent_segments::tokens.eq(p.tokens as i32),
                        )
                    })
                    .collect();
                let ids: Vec<(i32, Uuid)> = diesel::insert_into(parent_segments::table)
                    .values(rows)
                    .returning((parent_segments::position, parent_segments::id))
                    .get_results(conn)
                    .await?;
                let mut ids = ids;
                ids.sort_by_key(|(position, _)| *position);
                parent_ids.extend(ids.into_iter().map(|(_, id)| id));
            }
            for (batch_index, batch) in segments.chunks(INSERT_BATCH).enumerate() {
                let rows: Vec<_> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let hash = hex::encode(Sha256::digest(s.piece.content.as_bytes()));
                        (
                            document_segments::workspace_id.eq(document.workspace_id),
                            document_segments::document_id.eq(document.id),
                            document_segments::dataset_id.eq(document.dataset_id),
                            document_segments::position.eq((batch_index * INSERT_BATCH + i) as i32),
                            document_segments::content.eq(&s.piece.content),
                            document_segments::word_count.eq(s.words as i32),
                            document_segments::tokens.eq(s.piece.tokens as i32),
                            document_segments::keywords.eq(json!(s.keywords)),
                            document_segments::index_node_hash.eq(hash),
                            document_segments::status.eq("COMPLETED"),
                            document_segments::embedding.eq(s
                                .embedding
                                .as_ref()
                                .map(|v| v.iter().map(|x| Some(*x)).collect::<Vec<_>>())),
                            document_segments::created_by.eq(document.created_by),
                            document_segments::parent_segment_id
                                .eq(s.parent.and_then(|p| parent_ids.get(p).copied())),
                            document_segments::answer.eq(s.answer.as_deref()),
                        )
                    })
                    .collect();
                diesel::insert_into(document_segments::table)
                    .values(rows)
                    .execute(conn)
                    .await?;
            }
            // A parent-child document's text is its parents' (children overlap).
            let (words, tokens): (i32, i32) = if parents.is_empty() {
                (
                    segments.iter().map(|s| s.words as i32).sum(),
                    segments
                        .iter()
                        .map(|s| {
                            (s.piece.tokens + s.answer.as_deref().map_or(0, tokens::count)) as i32
                        })
                        .sum(),
                )
            } else {
                (
                    parents
                        .iter()
                        .map(|p| text::word_count(&p.content) as i32)
                        .sum(),
                    parents.iter().map(|p| p.tokens as i32).sum(),
                )
            };
            let embedded = segments.iter().any(|s| s.embedding.is_some());
            let updated: Document = diesel::update(documents::table.find(document.id))
                .set((
                    documents::indexing_status.eq("COMPLETED"),
                    documents::progress.eq(1.0f32),
                    documents::progress_msg
                        .eq(Some(format!("Indexed {} segments", segments.len()))),
                    documents::error.eq(None::<String>),
                    documents::word_count.eq(words),
                    documents::tokens.eq(tokens),
                    documents::process_duration.eq(elapsed_sql()),
                ))
                .returning(Document::as_returning())
                .get_result(conn)
                .await?;
            let bump = i64::from(embedded || had_embeddings);
            diesel::update(datasets::table.find(document.dataset_id))
                .set((
                    datasets::word_count.eq(datasets::word_count + (words - old_words)),
                    datasets::tokens.eq(datasets::tokens + (tokens - old_tokens)),
                    datasets::embedding_version.eq(datasets::embedding_version + bump),
                ))
                .execute(conn)
                .await?;
            queue::remove(conn, job.id).await?;
            Ok(Written::Indexed(Box::new(updated)))
        })
        .await?;
    Ok(result)
}
