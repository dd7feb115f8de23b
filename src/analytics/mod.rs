//! Usage analytics: an application's conversations, turns, end users, tokens, ratings and reply
//! latencies per hour, day or week (`Application.stats`), and a workspace's runs, tokens per model
//! and active end users (`Workspace.usage`).
//!
//! Counts are kept current at write time by triggers (migration 000022) in 15-minute UTC slots, so
//! a request reads a few thousand slot rows instead of every message; buckets in any IANA time
//! zone are runs of whole slots (`buckets`).

mod application_stats;
mod buckets;
mod latency;
mod workspace_usage;

pub use application_stats::{ApplicationStatsBucket, application_stats};
pub use buckets::{Interval, Range};
pub use workspace_usage::{ModelTokens, RUN_STATUSES, WorkspaceUsageBucket, workspace_usage};
