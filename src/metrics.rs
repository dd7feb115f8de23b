//! Process counters exposed on `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters of one server process. Cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SQL statements sent to PostgreSQL (counted by Diesel's instrumentation).
    pub db_queries: AtomicU64,
    /// SQL statements of the engine's workers (their own pool).
    pub engine_db_queries: AtomicU64,
    /// GraphQL requests received over HTTP.
    pub graphql_requests: AtomicU64,
    /// Subscriptions open now, over every transport.
    pub subscriptions_active: AtomicI64,
    /// Events published on streams and feeds by this process.
    pub stream_events_published: AtomicU64,
    /// Subscribers caught up from a retained stream instead of the live fan-out.
    pub stream_catchups: AtomicU64,
}

impl Metrics {
    pub fn db_queries(&self) -> u64 {
        self.db_queries.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        counter(
            &mut out,
            "weft_db_queries_total",
            "SQL statements sent to PostgreSQL.",
            self.db_queries(),
        );
        counter(
            &mut out,
            "weft_engine_db_queries_total",
            "SQL statements sent to PostgreSQL by the workers running workflows and replies.",
            self.engine_db_queries.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "weft_graphql_requests_total",
            "GraphQL requests received over HTTP.",
            self.graphql_requests.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "weft_subscriptions_active",
            "GraphQL subscriptions open now.",
            self.subscriptions_active.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "weft_stream_events_published_total",
            "Events published on streams and feeds.",
            self.stream_events_published.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "weft_stream_catchups_total",
            "Subscribers caught up from the retained stream (behind the fan-out buffer, or after a bus reconnection).",
            self.stream_catchups.load(Ordering::Relaxed),
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}
