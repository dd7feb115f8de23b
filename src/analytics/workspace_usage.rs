//! `Workspace.usage`: per bucket, the runs created by their current status, the tokens of every
//! model call (chat and embeddings) by provider and model, and the distinct end users who sent a
//! message to any of the workspace's applications.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::buckets::{self, Range};
use crate::auth::permissions::authorize_workspace;
use crate::auth::{Action, Actor};
use crate::error::AppResult;

/// The run statuses, in the order `runs` lists them.
pub const RUN_STATUSES: [&str; 5] = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"];

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceUsageBucket {
    pub start: DateTime<Utc>,
    /// Runs created in the bucket by current status, in the order of `RUN_STATUSES`.
    pub runs: [i64; 5],
    pub tokens: Vec<ModelTokens>,
    pub active_end_users: i64,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ModelTokens {
    #[diesel(sql_type = Integer)]
    bucket: i32,
    #[diesel(sql_type = SqlUuid)]
    pub provider_id: Uuid,
    #[diesel(sql_type = Text)]
    pub provider_name: String,
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = BigInt)]
    pub prompt_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub completion_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub total_tokens: i64,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    bucket: i32,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A workspace's usage, one bucket per interval of the range (empty ones with zeros). Builders
/// who are members of the workspace only.
pub async fn workspace_usage(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    workspace_id: Uuid,
    range: &Range,
) -> AppResult<Vec<WorkspaceUsageBucket>> {
    actor.user_id()?;
    authorize_workspace(conn, actor, workspace_id, Action::Read).await?;
    let bounds = buckets::bounds(conn, range).await?;
    let mut out: Vec<WorkspaceUsageBucket> = bounds[..bounds.len() - 1]
        .iter()
        .map(|start| WorkspaceUsageBucket {
            start: *start,
            runs: [0; 5],
            tokens: Vec::new(),
            active_end_users: 0,
        })
        .collect();
    // Runs by status and active end users, as (bucket, key, count).
    let counts: Vec<Count> = diesel::sql_query(
        "SELECT width_bucket(slot, $2) AS bucket, status::text AS key, sum(runs)::bigint AS n \
         FROM workspace_run_stats \
         WHERE workspace_id = $1 AND slot >= $2[1] AND slot < $2[array_length($2, 1)] \
         GROUP BY 1, 2 \
         UNION ALL \
         SELECT width_bucket(slot, $2), '', count(DISTINCT end_user_id) \
         FROM application_active_end_users \
         WHERE workspace_id = $1 AND slot >= $2[1] AND slot < $2[array_length($2, 1)] \
         GROUP BY 1",
    )
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Array<Timestamptz>, _>(&bounds)
    .load(conn)
    .await?;
    for count in counts {
        let Some(bucket) = bucket_of(&mut out, count.bucket) else {
            continue;
        };
        match RUN_STATUSES.iter().position(|s| *s == count.key) {
            Some(status) => bucket.runs[status] = count.n,
            None => bucket.active_end_users = count.n,
        }
    }
    let tokens: Vec<ModelTokens> = diesel::sql_query(
        "SELECT width_bucket(slot, $2) AS bucket, provider_id, \
                (array_agg(provider_name ORDER BY slot DESC))[1]::text AS provider_name, model::text AS model, \
                sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens, \
                sum(total_tokens)::bigint AS total_tokens, sum(calls)::bigint AS calls \
         FROM workspace_token_usage \
         WHERE workspace_id = $1 AND slot >= $2[1] AND slot < $2[array_length($2, 1)] \
         GROUP BY 1, 2, 4 \
         ORDER BY 1, total_tokens DESC, 3, 4",
    )
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Array<Timestamptz>, _>(&bounds)
    .load(conn)
    .await?;
    for t in tokens {
        if let Some(bucket) = bucket_of(&mut out, t.bucket) {
            bucket.tokens.push(t);
        }
    }
    Ok(out)
}

fn bucket_of(out: &mut [WorkspaceUsageBucket], bucket: i32) -> Option<&mut WorkspaceUsageBucket> {
    usize::try_from(bucket)
        .ok()
        .and_then(|b| b.checked_sub(1))
        .and_then(|b| out.get_mut(b))
}
