//! The durable queue of background work, in PostgreSQL (`execution_jobs`): runs (RUN, an
//! execution) and indexings (INDEX, a document). Work is enqueued in the same transaction
//! that creates what it works on, so a request that returned has work that will happen.
//! Workers of every instance claim the oldest unclaimed jobs with `FOR UPDATE SKIP LOCKED`
//! and hold them by a lease they renew; a job whose lease ran out belongs to an instance
//! that died: its run is finished as FAILED ("interrupted"), its indexing taken again.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, Interval, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::schema::execution_jobs;
use crate::db::statement::KeepPrepared;
use crate::error::AppResult;

/// A claimed job.
#[derive(Debug, Clone, QueryableByName, Selectable, Queryable)]
#[diesel(table_name = execution_jobs, check_for_backend(diesel::pg::Pg))]
pub struct Job {
    pub id: Uuid,
    pub workspace_id: Uuid,
    /// The run (a RUN job); exactly one of this and `document_id` is set.
    pub execution_id: Option<Uuid>,
    /// The document to index (an INDEX job).
    pub document_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub context: Value,
    pub attempts: i32,
    pub stop_requested: bool,
}

/// Enqueues the run of `execution_id` (inside the caller's transaction).
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    execution_id: Uuid,
    message_id: Option<Uuid>,
    context: Value,
) -> AppResult<()> {
    diesel::insert_into(execution_jobs::table)
        .values((
            execution_jobs::workspace_id.eq(workspace_id),
            execution_jobs::execution_id.eq(execution_id),
            execution_jobs::message_id.eq(message_id),
            execution_jobs::context.eq(context),
        ))
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

fn interval(lease: Duration) -> diesel::data_types::PgInterval {
    diesel::data_types::PgInterval::from_microseconds(lease.as_micros() as i64)
}

const RETURNING: &str = "RETURNING id, workspace_id, execution_id, document_id, message_id, \
     context, attempts, stop_requested";

/// Queues the indexing of a document (inside the caller's transaction). When one is already
/// queued, it will read the latest text anyway; when one is running, it is told to start
/// over (it checks before writing its segments, under the same row lock).
pub async fn enqueue_indexing(
    conn: &mut AsyncPgConnection,
    workspace_id: Uuid,
    document_id: Uuid,
) -> AppResult<()> {
    diesel::sql_query(
        "INSERT INTO execution_jobs (workspace_id, kind, document_id) VALUES ($1, 'INDEX', $2) \
         ON CONFLICT (document_id) DO UPDATE \
         SET stop_requested = execution_jobs.leased_by IS NOT NULL",
    )
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<SqlUuid, _>(document_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Queues the indexing of every live document of a dataset (inside the caller's
/// transaction), each document back to WAITING.
pub async fn enqueue_indexing_of_dataset(
    conn: &mut AsyncPgConnection,
    dataset_id: Uuid,
) -> AppResult<()> {
    diesel::sql_query(
        "UPDATE documents SET indexing_status = 'WAITING', progress = 0, error = NULL, \
         progress_msg = 'Waiting to be indexed again' \
         WHERE dataset_id = $1 AND deleted_at IS NULL",
    )
    .bind::<SqlUuid, _>(dataset_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO execution_jobs (workspace_id, kind, document_id) \
         SELECT workspace_id, 'INDEX', id FROM documents \
         WHERE dataset_id = $1 AND deleted_at IS NULL \
         ON CONFLICT (document_id) DO UPDATE \
         SET stop_requested = execution_jobs.leased_by IS NOT NULL",
    )
    .bind::<SqlUuid, _>(dataset_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a claimed job back in the queue (an indexing to start over, or handed over at
/// shutdown).
pub async fn release(conn: &mut AsyncPgConnection, job_id: Uuid) -> AppResult<()> {
    diesel::update(execution_jobs::table.find(job_id))
        .set((
            execution_jobs::leased_by.eq(None::<String>),
            execution_jobs::lease_expires_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            execution_jobs::stop_requested.eq(false),
        ))
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a job that is done (by its id).
pub async fn remove(conn: &mut AsyncPgConnection, job_id: Uuid) -> AppResult<()> {
    diesel::delete(execution_jobs::table.find(job_id))
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether a job was told to stop (or, for an indexing, to start over), read under a row
/// lock inside the caller's transaction; `None` when the job is gone.
pub async fn stop_requested_locked(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
) -> AppResult<Option<bool>> {
    Ok(execution_jobs::table
        .find(job_id)
        .select(execution_jobs::stop_requested)
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Claims up to `free` of the oldest unclaimed jobs for `instance`, in one statement: runs
/// first, then indexings (at most `free_indexing` of them) in the room the runs left.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    instance: &str,
    lease: Duration,
    free: i64,
    free_indexing: i64,
) -> AppResult<Vec<Job>> {
    let sql = format!(
        "WITH runs AS (SELECT id FROM execution_jobs WHERE leased_by IS NULL AND kind = 'RUN' \
                       ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT $3), \
              indexings AS (SELECT id FROM execution_jobs \
                            WHERE leased_by IS NULL AND kind = 'INDEX' \
                            ORDER BY created_at FOR UPDATE SKIP LOCKED \
                            LIMIT LEAST($4, GREATEST(0, $3 - (SELECT count(*) FROM runs)))) \
         UPDATE execution_jobs SET leased_by = $1, lease_expires_at = now() + $2, \
                attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM runs UNION ALL SELECT id FROM indexings) {RETURNING}"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(instance)
        .bind::<Interval, _>(interval(lease))
        .bind::<diesel::sql_types::BigInt, _>(free)
        .bind::<diesel::sql_types::BigInt, _>(free_indexing)
        .prepared()
        .load::<Job>(conn)
        .await?)
}

/// Claims a job whose lease ran out (its instance died), to finish it.
pub async fn claim_expired(
    conn: &mut AsyncPgConnection,
    instance: &str,
    lease: Duration,
) -> AppResult<Option<Job>> {
    let sql = format!(
        "UPDATE execution_jobs SET leased_by = $1, lease_expires_at = now() + $2 \
         WHERE id = (SELECT id FROM execution_jobs \
                     WHERE leased_by IS NOT NULL AND lease_expires_at < now() \
                     ORDER BY lease_expires_at FOR UPDATE SKIP LOCKED LIMIT 1) {RETURNING}"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(instance)
        .bind::<Interval, _>(interval(lease))
        .get_result::<Job>(conn)
        .await
        .optional()?)
}

/// What a renewal found about one of this instance's jobs.
#[derive(Debug, QueryableByName)]
pub struct Lease {
    /// What the job works on: its execution or its document.
    #[diesel(sql_type = SqlUuid)]
    pub subject: Uuid,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub stop_requested: bool,
}

/// Extends the leases `instance` holds on the jobs of `subjects`; a job missing from the
/// answer is no longer this instance's.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    instance: &str,
    subjects: &[Uuid],
    lease: Duration,
) -> AppResult<Vec<Lease>> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(
        "UPDATE execution_jobs SET lease_expires_at = now() + $3 \
         WHERE leased_by = $1 AND coalesce(execution_id, document_id) = ANY($2) \
         RETURNING coalesce(execution_id, document_id) AS subject, stop_requested",
    )
    .bind::<Text, _>(instance)
    .bind::<Array<SqlUuid>, _>(subjects)
    .bind::<Interval, _>(interval(lease))
    .load::<Lease>(conn)
    .await?)
}

/// Removes a finished run's job.
pub async fn complete(conn: &mut AsyncPgConnection, execution_id: Uuid) -> AppResult<()> {
    diesel::delete(execution_jobs::table.filter(execution_jobs::execution_id.eq(execution_id)))
        .prepared()
        .execute(conn)
        .await?;
    Ok(())
}

/// Where a stop found the run.
#[derive(Debug, PartialEq, Eq)]
pub enum StopFound {
    /// Not claimed yet: the caller finishes it (the job is locked by its transaction).
    Queued(Job),
    /// Running somewhere: the job now says so, and the worker stops it.
    Running,
    /// No job: the run has finished.
    Finished,
}

/// Marks a run's job as to be stopped (inside the caller's transaction).
pub async fn request_stop(
    conn: &mut AsyncPgConnection,
    execution_id: Uuid,
) -> AppResult<StopFound> {
    let job: Option<(Job, Option<String>)> = execution_jobs::table
        .filter(execution_jobs::execution_id.eq(execution_id))
        .select((Job::as_select(), execution_jobs::leased_by))
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(match job {
        None => StopFound::Finished,
        Some((job, None)) => StopFound::Queued(job),
        Some((_, Some(_))) => {
            diesel::update(
                execution_jobs::table.filter(execution_jobs::execution_id.eq(execution_id)),
            )
            .set(execution_jobs::stop_requested.eq(true))
            .execute(conn)
            .await?;
            StopFound::Running
        }
    })
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        self.id == other.id
    }
}
impl Eq for Job {}
