//! `Application.stats`: per bucket, conversations started, end-user turns, distinct end users,
//! reply tokens, ratings, failed replies and reply latency percentiles.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::buckets::{self, Range};
use super::latency::Histogram;
use crate::auth::permissions::authorize_workspace;
use crate::auth::{Action, Actor};
use crate::error::AppResult;

#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationStatsBucket {
    pub start: DateTime<Utc>,
    pub conversations: i64,
    pub messages: i64,
    pub active_end_users: i64,
    pub total_tokens: i64,
    pub likes: i64,
    pub dislikes: i64,
    pub failed_replies: i64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

impl ApplicationStatsBucket {
    fn empty(start: DateTime<Utc>) -> Self {
        ApplicationStatsBucket {
            start,
            conversations: 0,
            messages: 0,
            active_end_users: 0,
            total_tokens: 0,
            likes: 0,
            dislikes: 0,
            failed_replies: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
        }
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Integer)]
    bucket: i32,
    #[diesel(sql_type = BigInt)]
    conversations: i64,
    #[diesel(sql_type = BigInt)]
    messages: i64,
    #[diesel(sql_type = BigInt)]
    active_end_users: i64,
    #[diesel(sql_type = BigInt)]
    total_tokens: i64,
    #[diesel(sql_type = BigInt)]
    likes: i64,
    #[diesel(sql_type = BigInt)]
    dislikes: i64,
    #[diesel(sql_type = BigInt)]
    failed_replies: i64,
    /// The slots' histograms as JSON text (`latency::Histogram::add_json`).
    #[diesel(sql_type = Nullable<Array<Text>>)]
    latencies: Option<Vec<String>>,
}

/// The stats of one application in its workspace, one bucket per interval of the range (empty
/// ones with zeros). Builders who are members of the workspace only: API keys and end users
/// are FORBIDDEN.
pub async fn application_stats(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workspace_id: Uuid,
    application_id: Uuid,
    range: &Range,
) -> AppResult<Vec<ApplicationStatsBucket>> {
    actor.user_id()?;
    authorize_workspace(conn, actor, workspace_id, Action::Read).await?;
    let bounds = buckets::bounds(conn, range).await?;
    // Buckets of whole UTC hours (every zone whose offset is whole hours) read the hourly
    // rollup, a quarter of the rows; the others the 15-minute slots.
    let table = if bounds.iter().all(|b| b.timestamp().rem_euclid(3600) == 0) {
        "application_stats_hourly"
    } else {
        "application_stats"
    };
    let rows: Vec<Row> = diesel::sql_query(format!(
        "WITH s AS ( \
             SELECT width_bucket(slot, $3) AS bucket, sum(conversations) AS conversations, \
                    sum(messages) AS messages, sum(total_tokens) AS total_tokens, sum(likes) AS likes, \
                    sum(dislikes) AS dislikes, sum(failed_replies) AS failed_replies, \
                    array_agg(latencies::text) FILTER (WHERE latencies <> '{{}}'::jsonb) AS latencies \
             FROM {table} \
             WHERE application_id = $1 AND workspace_id = $2 AND slot >= $3[1] AND slot < $3[array_length($3, 1)] \
             GROUP BY 1), \
         u AS ( \
             SELECT width_bucket(slot, $3) AS bucket, count(DISTINCT end_user_id) AS active_end_users \
             FROM application_active_end_users \
             WHERE application_id = $1 AND workspace_id = $2 AND slot >= $3[1] AND slot < $3[array_length($3, 1)] \
             GROUP BY 1) \
         SELECT COALESCE(s.bucket, u.bucket) AS bucket, \
                COALESCE(s.conversations, 0)::bigint AS conversations, COALESCE(s.messages, 0)::bigint AS messages, \
                COALESCE(u.active_end_users, 0)::bigint AS active_end_users, \
                COALESCE(s.total_tokens, 0)::bigint AS total_tokens, COALESCE(s.likes, 0)::bigint AS likes, \
                COALESCE(s.dislikes, 0)::bigint AS dislikes, COALESCE(s.failed_replies, 0)::bigint AS failed_replies, \
                s.latencies \
         FROM s FULL JOIN u ON u.bucket = s.bucket"
    ))
    .bind::<SqlUuid, _>(application_id)
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Array<Timestamptz>, _>(&bounds)
    .load(conn)
    .await?;
    let mut out: Vec<ApplicationStatsBucket> = bounds[..bounds.len() - 1]
        .iter()
        .map(|start| ApplicationStatsBucket::empty(*start))
        .collect();
    let mut latencies = Histogram::default();
    for row in rows {
        let Some(bucket) = usize::try_from(row.bucket)
            .ok()
            .and_then(|b| b.checked_sub(1))
            .and_then(|b| out.get_mut(b))
        else {
            continue;
        };
        latencies.clear();
        row.latencies
            .iter()
            .flatten()
            .for_each(|h| latencies.add_json(h));
        *bucket = ApplicationStatsBucket {
            start: bucket.start,
            conversations: row.conversations,
            messages: row.messages,
            active_end_users: row.active_end_users,
            total_tokens: row.total_tokens,
            likes: row.likes,
            dislikes: row.dislikes,
            failed_replies: row.failed_replies,
            latency_p50_ms: latencies.percentile(0.5),
            latency_p95_ms: latencies.percentile(0.95),
        };
    }
    Ok(out)
}
