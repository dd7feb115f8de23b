//! `Application.stats` and `Workspace.usage`: the GraphQL shapes of `crate::analytics`.

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::context::{ContextExt, conn};
use super::enums::{ExecutionStatus, parse};
use crate::analytics::{self, Interval, Range};

/// How long one bucket of analytics is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsInterval {
    Hour,
    #[default]
    Day,
    /// From Monday.
    Week,
}

impl From<StatsInterval> for Interval {
    fn from(i: StatsInterval) -> Interval {
        match i {
            StatsInterval::Hour => Interval::Hour,
            StatsInterval::Day => Interval::Day,
            StatsInterval::Week => Interval::Week,
        }
    }
}

/// The range a field was asked for.
pub fn range(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Option<StatsInterval>,
    time_zone: Option<String>,
) -> Range {
    Range {
        from,
        to,
        interval: interval.unwrap_or_default().into(),
        time_zone: time_zone.unwrap_or_else(|| "UTC".to_string()),
    }
}

/// A GraphQL Int: counts past its range are shown as its largest value.
fn int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX })
}

/// One interval of an application's activity.
pub struct ApplicationStatsBucketObject(analytics::ApplicationStatsBucket);

#[Object(name = "ApplicationStatsBucket")]
impl ApplicationStatsBucketObject {
    /// Where the bucket starts (its interval's start in the time zone asked for).
    async fn start(&self) -> DateTime<Utc> {
        self.0.start
    }
    /// Conversations started in the bucket.
    async fn conversations(&self) -> i32 {
        int(self.0.conversations)
    }
    /// End-user messages (turns) sent in the bucket.
    async fn messages(&self) -> i32 {
        int(self.0.messages)
    }
    /// Distinct end users who sent a message.
    async fn active_end_users(&self) -> i32 {
        int(self.0.active_end_users)
    }
    /// Tokens of the replies.
    async fn total_tokens(&self) -> i32 {
        int(self.0.total_tokens)
    }
    async fn likes(&self) -> i32 {
        int(self.0.likes)
    }
    async fn dislikes(&self) -> i32 {
        int(self.0.dislikes)
    }
    async fn failed_replies(&self) -> i32 {
        int(self.0.failed_replies)
    }
    /// Reply latency (milliseconds kept to two significant digits); null when no reply.
    async fn latency_p50_ms(&self) -> Option<f64> {
        self.0.latency_p50_ms
    }
    async fn latency_p95_ms(&self) -> Option<f64> {
        self.0.latency_p95_ms
    }
}

/// `Application.stats`.
pub async fn application_stats(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    application_id: Uuid,
    range: Range,
) -> Result<Vec<ApplicationStatsBucketObject>> {
    let actor = ctx.actor()?;
    let mut conn = conn(ctx.app()?).await?;
    let buckets =
        analytics::application_stats(&mut conn, actor, workspace_id, application_id, &range)
            .await?;
    Ok(buckets
        .into_iter()
        .map(ApplicationStatsBucketObject)
        .collect())
}

/// How many runs created in a bucket are in one status.
#[derive(SimpleObject)]
pub struct RunStatusCount {
    status: ExecutionStatus,
    count: i32,
}

/// The tokens of one model's calls in a bucket.
#[derive(SimpleObject)]
#[graphql(name = "ModelTokenUsage")]
pub struct ModelTokenUsage {
    provider_id: Uuid,
    /// The provider's name when it was last used in the bucket.
    provider_name: String,
    model: String,
    prompt_tokens: i32,
    completion_tokens: i32,
    total_tokens: i32,
    calls: i32,
}

/// One interval of a workspace's usage.
pub struct WorkspaceUsageBucketObject(analytics::WorkspaceUsageBucket);

#[Object(name = "WorkspaceUsageBucket")]
impl WorkspaceUsageBucketObject {
    async fn start(&self) -> DateTime<Utc> {
        self.0.start
    }
    /// Runs created in the bucket.
    async fn runs(&self) -> i32 {
        int(self.0.runs.iter().sum())
    }
    /// Runs created in the bucket by their current status, every status listed.
    async fn runs_by_status(&self) -> Result<Vec<RunStatusCount>> {
        analytics::RUN_STATUSES
            .iter()
            .zip(self.0.runs)
            .map(|(status, n)| {
                Ok(RunStatusCount {
                    status: parse(status)?,
                    count: int(n),
                })
            })
            .collect()
    }
    /// Tokens of every model call (replies, other LLM nodes, embeddings), by provider and
    /// model, most used first.
    async fn tokens(&self) -> Vec<ModelTokenUsage> {
        self.0
            .tokens
            .iter()
            .map(|t| ModelTokenUsage {
                provider_id: t.provider_id,
                provider_name: t.provider_name.clone(),
                model: t.model.clone(),
                prompt_tokens: int(t.prompt_tokens),
                completion_tokens: int(t.completion_tokens),
                total_tokens: int(t.total_tokens),
                calls: int(t.calls),
            })
            .collect()
    }
    /// All tokens of the bucket.
    async fn total_tokens(&self) -> i32 {
        int(self.0.tokens.iter().map(|t| t.total_tokens).sum())
    }
    /// Distinct end users who sent a message to any application of the workspace.
    async fn active_end_users(&self) -> i32 {
        int(self.0.active_end_users)
    }
}

/// `Workspace.usage`.
pub async fn workspace_usage(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    range: Range,
) -> Result<Vec<WorkspaceUsageBucketObject>> {
    let actor = ctx.actor()?;
    let mut conn = conn(ctx.app()?).await?;
    let buckets = analytics::workspace_usage(&mut conn, actor, workspace_id, &range).await?;
    Ok(buckets
        .into_iter()
        .map(WorkspaceUsageBucketObject)
        .collect())
}
