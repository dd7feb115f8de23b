//! A small OpenAI-compatible server inside the test process: `POST /v1/chat/completions`
//! streaming real SSE over HTTP, `POST /v1/embeddings`, and `POST /v1/rerank` (the Jina /
//! Cohere shape; shorter documents score higher). The model name picks the behaviour:
//! `flaky` fails twice with 503 first, `busy` is always 429, `slow` streams a token every
//! 20 ms (up to 500) and records whether the client hung up early; any other model answers
//! "Hello world" in three pieces with usage. The key is `test-key`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const KEY: &str = "test-key";

#[derive(Default)]
pub struct Seen {
    pub requests: AtomicUsize,
    /// A `slow` stream's client closed the connection before the end.
    pub hung_up: AtomicBool,
    pub last_body: std::sync::Mutex<Option<Value>>,
    /// Milliseconds every embeddings answer waits before it is sent (a slow provider).
    pub embeddings_delay_ms: std::sync::atomic::AtomicU64,
}

pub struct ModelServer {
    /// `http://127.0.0.1:<port>/v1`
    pub base_url: String,
    pub seen: Arc<Seen>,
}

impl ModelServer {
    pub async fn start() -> ModelServer {
        let seen = Arc::new(Seen::default());
        let router = axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/rerank", post(rerank))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        ModelServer { base_url, seen }
    }
}

fn refused(headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (presented != format!("Bearer {KEY}")).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error" } })),
        )
            .into_response()
    })
}

fn event(value: Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

fn delta(text: &str) -> Bytes {
    event(
        json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": text } }] }),
    )
}

/// Sets `hung_up` when dropped before the stream's end.
struct HangUp {
    seen: Arc<Seen>,
    finished: bool,
}

impl HangUp {
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        if !self.finished {
            self.seen.hung_up.store(true, Ordering::SeqCst);
        }
    }
}

async fn chat(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let n = seen.requests.fetch_add(1, Ordering::SeqCst);
    *seen.last_body.lock().expect("lock") = Some(body.clone());
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    let model = body["model"].as_str().unwrap_or_default();
    match model {
        "flaky" if n < 2 => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": { "message": "overloaded" } })),
            )
                .into_response();
        }
        "busy" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({ "error": { "message": "slow down" } })),
            )
                .into_response();
        }
        "slow" => {
            let guard = HangUp {
                seen: seen.clone(),
                finished: false,
            };
            let stream = futures_util::stream::unfold((0, guard), |(i, mut guard)| async move {
                if i == 500 {
                    guard.finish();
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((
                    Ok::<_, Infallible>(delta(&format!("t{i} "))),
                    (i + 1, guard),
                ))
            });
            return sse(Body::from_stream(stream));
        }
        _ => {}
    }
    let mut pieces: Vec<Bytes> = ["Hel", "lo", " world"].iter().map(|t| delta(t)).collect();
    pieces.push(event(json!({ "choices": [], "usage": { "prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12 } })));
    pieces.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, Infallible>));
    sse(Body::from_stream(stream))
}

fn sse(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .expect("a response")
}

/// The `topics` model: one dimension per topic, counting the topic's words in the text, so
/// that texts on one subject are near each other without sharing a word.
pub const TOPICS: [&[&str]; 3] = [
    &[
        "sea", "ocean", "tide", "tides", "wave", "waves", "harbour", "boat", "boats", "sailor",
    ],
    &[
        "bread", "oven", "flour", "dough", "yeast", "baker", "loaf", "bake", "crust",
    ],
    &[
        "star",
        "stars",
        "planet",
        "planets",
        "orbit",
        "telescope",
        "galaxy",
        "comet",
    ],
];

fn topic_embedding(text: &str) -> Vec<f64> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    TOPICS
        .iter()
        .map(|topic| 0.01 + words.iter().filter(|w| topic.contains(&w.as_str())).count() as f64)
        .collect()
}

async fn embeddings(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    let delay = seen.embeddings_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if body["model"] == "bloated" {
        // An answer far larger than its vectors need: the client must stop reading.
        let padding = "x".repeat(8 << 20);
        return Json(json!({ "object": "list", "padding": padding, "data": [] })).into_response();
    }
    let topics = body["model"] == "topics";
    // Answered in reverse order: clients must order by `index`.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, text)| {
            let embedding = if topics {
                topic_embedding(text)
            } else {
                vec![text.len() as f64, 1.0, 0.5]
            };
            json!({ "index": i, "embedding": embedding })
        })
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

/// Scores each document `1 / (1 + its words)`: the shortest first, whatever the query.
/// Answers the `top_n` best, best first, as Jina and Cohere do.
async fn rerank(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(refusal) = refused(&headers) {
        return refusal;
    }
    if let Ok(mut last) = seen.last_body.lock() {
        *last = Some(body.clone());
    }
    if body["model"] == "busy" {
        return (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
    }
    let documents: Vec<String> = body["documents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut results: Vec<(usize, f64)> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| (i, 1.0 / (1.0 + d.split_whitespace().count() as f64)))
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    results.truncate(body["top_n"].as_u64().map_or(results.len(), |n| n as usize));
    let results: Vec<Value> = results
        .into_iter()
        .map(|(index, score)| json!({ "index": index, "relevance_score": score }))
        .collect();
    Json(json!({ "model": body["model"], "results": results })).into_response()
}
