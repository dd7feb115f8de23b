//! The process's metrics, exposed on `/metrics` in the OpenMetrics text format (which
//! Prometheus reads) by the `prometheus-client` crate: counters bumped from any task, and two
//! histograms that show in production what the benchmarks measure — the time of each GraphQL
//! request over HTTP by operation name, and the time from a stream event's publication to
//! its frame written to a subscriber (`messageStream`, `executionEvents`; events delivered
//! live, not those read back to catch a subscriber up).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct operation names a process labels its request durations with; later names are
/// counted under `other` (a client chooses the names: their number must stay bounded).
const MAX_OPERATIONS: usize = 200;
/// The longest operation name kept as a label.
const MAX_OPERATION_NAME: usize = 100;

/// A request duration's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Operation {
    /// The request's `operationName`, `anonymous` without one, `other` past the limit.
    pub operation: String,
}

/// Histogram buckets of request and delivery times: 0.25 ms to about 16 s.
#[derive(Clone, Copy, Debug)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
    }
}

/// Metrics of one server process. Cheap to bump from any task.
#[derive(Debug)]
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
    /// Stream events a WebSocket subscriber answered with the answer another subscriber
    /// asking the same way had made (`graphql::shared`), rather than its own.
    pub answers_shared: AtomicU64,
    request_duration: Family<Operation, Histogram, Buckets>,
    delivery: Histogram,
    /// The operation names labelled so far.
    operations: Mutex<HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            db_queries: AtomicU64::new(0),
            engine_db_queries: AtomicU64::new(0),
            graphql_requests: AtomicU64::new(0),
            subscriptions_active: AtomicI64::new(0),
            stream_events_published: AtomicU64::new(0),
            stream_catchups: AtomicU64::new(0),
            answers_shared: AtomicU64::new(0),
            request_duration: Family::new_with_constructor(Buckets),
            delivery: Buckets.new_metric(),
            operations: Mutex::new(HashSet::new()),
        }
    }
}

impl Metrics {
    pub fn db_queries(&self) -> u64 {
        self.db_queries.load(Ordering::Relaxed)
    }

    /// Notes how long a GraphQL request over HTTP took to answer, under its operation name.
    pub fn request_answered(&self, operation_name: Option<&str>, took: Duration) {
        let operation = self.operation_label(operation_name);
        self.request_duration
            .get_or_create(&Operation { operation })
            .observe(took.as_secs_f64());
    }

    /// Notes that the frame of a stream event published at `published_at_us` (µs since the
    /// epoch, by this or another instance's clock) was written to its subscriber now.
    pub fn event_delivered(&self, published_at_us: i64) {
        let took = crate::realtime::events::now_us().saturating_sub(published_at_us);
        self.delivery.observe(took.max(0) as f64 / 1e6);
    }

    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return "anonymous".into();
        };
        let plain = name.len() <= MAX_OPERATION_NAME
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return "other".into();
        }
        let Ok(mut seen) = self.operations.lock() else {
            return "other".into();
        };
        if seen.contains(name) || seen.len() < MAX_OPERATIONS {
            seen.insert(name.to_string());
            name.to_string()
        } else {
            "other".into()
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str, value: &AtomicU64| {
            registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
        };
        counter(
            &mut registry,
            "weft_db_queries",
            "SQL statements sent to PostgreSQL.",
            &self.db_queries,
        );
        counter(
            &mut registry,
            "weft_engine_db_queries",
            "SQL statements sent to PostgreSQL by the workers running workflows and replies.",
            &self.engine_db_queries,
        );
        counter(
            &mut registry,
            "weft_graphql_requests",
            "GraphQL requests received over HTTP.",
            &self.graphql_requests,
        );
        registry.register(
            "weft_subscriptions_active",
            "GraphQL subscriptions open now.",
            ConstGauge::new(self.subscriptions_active.load(Ordering::Relaxed)),
        );
        counter(
            &mut registry,
            "weft_stream_events_published",
            "Events published on streams and feeds.",
            &self.stream_events_published,
        );
        counter(
            &mut registry,
            "weft_stream_catchups",
            "Subscribers caught up from the retained stream (behind the fan-out buffer, or after a bus reconnection).",
            &self.stream_catchups,
        );
        counter(
            &mut registry,
            "weft_subscription_answers_shared",
            "Stream events answered over WebSocket with the answer another subscriber asking the same way made (executed and serialized once).",
            &self.answers_shared,
        );
        registry.register(
            "weft_graphql_request_duration_seconds",
            "Time to answer a GraphQL request over HTTP (an event stream's excepted), by operation name.",
            self.request_duration.clone(),
        );
        registry.register(
            "weft_subscription_delivery_seconds",
            "Time from a stream event's publication to its frame written to a subscriber (events delivered live).",
            self.delivery.clone(),
        );
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// The publication times of the events one subscription hands to its transport, in order,
/// until the transport writes their frames (request data of an SSE subscription: its
/// resolver notes each item, live stream events with their time, anything else without;
/// over WebSocket the connection answers handed-over events itself and knows their time).
#[derive(Clone, Debug, Default)]
pub struct Deliveries(Arc<Mutex<VecDeque<Option<i64>>>>);

/// Items noted and not yet written, at most (a transport that writes none keeps no more).
const MAX_UNWRITTEN: usize = 1024;

impl Deliveries {
    /// The subscription handed an item to its transport: a live stream event published at
    /// `published_at_us`, or something else (`None`).
    pub fn handed(&self, published_at_us: Option<i64>) {
        if let Ok(mut items) = self.0.lock() {
            if items.len() >= MAX_UNWRITTEN {
                items.pop_front();
            }
            items.push_back(published_at_us.filter(|at| *at > 0));
        }
    }

    /// The transport takes the subscription's next item: the publication time of the live
    /// stream event it is, if it is one (the transport notes its delivery once its frame is
    /// written, `Metrics::event_delivered`).
    pub fn next_published(&self) -> Option<i64> {
        self.0
            .lock()
            .ok()
            .and_then(|mut items| items.pop_front())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded_and_plain() {
        let metrics = Metrics::default();
        assert_eq!(metrics.operation_label(None), "anonymous");
        assert_eq!(metrics.operation_label(Some("History")), "History");
        assert_eq!(metrics.operation_label(Some("drop table; --")), "other");
        for n in 0..MAX_OPERATIONS * 2 {
            metrics.operation_label(Some(&format!("Op{n}")));
        }
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(Some("History")), "History");
    }

    #[test]
    fn counters_and_histograms_are_exposed() {
        let metrics = Metrics::default();
        metrics.db_queries.fetch_add(3, Ordering::Relaxed);
        metrics.request_answered(Some("History"), Duration::from_millis(3));
        let deliveries = Deliveries::default();
        deliveries.handed(Some(crate::realtime::events::now_us() - 700));
        deliveries.handed(None);
        for _ in 0..3 {
            if let Some(at) = deliveries.next_published() {
                metrics.event_delivered(at);
            }
        }
        let text = metrics.render();
        assert!(text.contains("weft_db_queries_total 3"), "{text}");
        assert!(
            text.contains("weft_subscription_delivery_seconds_count 1"),
            "one live event written: {text}"
        );
        assert!(
            text.contains(
                "weft_graphql_request_duration_seconds_bucket{le=\"0.004\",operation=\"History\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("weft_graphql_request_duration_seconds_count{operation=\"History\"} 1"),
            "{text}"
        );
    }
}
