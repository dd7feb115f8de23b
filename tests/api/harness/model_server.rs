//! A small OpenAI-compatible server inside the test process: `POST /v1/chat/completions`
//! streaming real SSE over HTTP, `POST /v1/embeddings`, and `POST /v1/rerank` (the Jina /
//! Cohere shape; shorter documents score higher). The model name picks the behaviour:
//! `flaky` fails twice with 503 first, `busy` is always 429, `slow` streams a token every
//! 20 ms (up to 500) and records whether the client hung up early; `agent` and `agent-loop`
//! call functions (see `agent_turn`); any other model answers "Hello world" in three pieces
//! with usage. The key is `test-key`.

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
        "agent" | "agent-loop" => return sse(Body::from_stream(agent_turn(&body))),
        _ => {}
    }
    let mut pieces: Vec<Bytes> = ["Hel", "lo", " world"].iter().map(|t| delta(t)).collect();
    pieces.push(event(json!({ "choices": [], "usage": { "prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12 } })));
    pieces.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, Infallible>));
    sse(Body::from_stream(stream))
}

/// A turn of the `agent` models, as streamed chunks. Offered tools (and not told
/// `tool_choice: "none"`), `agent` reads the last user message: `call: <name> <JSON> | <name>
/// <JSON>...` makes it say "Let me look. " and call those functions (their pieces
/// interleaved, the arguments split across chunks); after the tools answered it says "Tools
/// said: " and their answers joined by "; ". `agent-loop` calls again after every answer.
/// Without tools (or told none) both answer "Answered after N tool messages.".
fn agent_turn(body: &Value) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + use<> {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let may_call =
        body["tools"].as_array().is_some_and(|t| !t.is_empty()) && body["tool_choice"] != "none";
    let last_role = messages
        .last()
        .map(|m| m["role"].clone())
        .unwrap_or_default();
    let asked = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let calls: Vec<(String, String)> = asked
        .split_once("call: ")
        .map(|(_, list)| {
            list.split(" | ")
                .filter_map(|c| c.trim().split_once(' '))
                .map(|(name, args)| (name.to_string(), args.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let again = body["model"] == "agent-loop";
    let mut pieces: Vec<Bytes> = Vec::new();
    if may_call && !calls.is_empty() && (last_role == "user" || again) {
        pieces.push(delta("Let me look. "));
        let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
        // First each call's name, then the arguments in two halves, calls interleaved.
        for (i, (name, _)) in calls.iter().enumerate() {
            pieces.push(tool_piece(
                json!({ "index": i, "id": format!("call_{turn}_{i}"), "type": "function",
                                            "function": { "name": name, "arguments": "" } }),
            ));
        }
        for half in 0..2 {
            for (i, (_, args)) in calls.iter().enumerate() {
                let cut = args.len() / 2;
                let part = if half == 0 {
                    &args[..cut]
                } else {
                    &args[cut..]
                };
                pieces.push(tool_piece(
                    json!({ "index": i, "function": { "arguments": part } }),
                ));
            }
        }
        pieces.push(event(
            json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }] }),
        ));
    } else if may_call && last_role == "tool" {
        let answers: Vec<String> = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        pieces.push(delta("Tools said: "));
        pieces.push(delta(&answers.join("; ")));
    } else if calls.is_empty() {
        pieces.extend(["Hel", "lo", " world"].iter().map(|t| delta(t)));
    } else {
        let answered = messages.iter().filter(|m| m["role"] == "tool").count();
        pieces.push(delta(&format!("Answered after {answered} tool messages.")));
    }
    pieces.push(event(json!({ "choices": [], "usage": { "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15 } })));
    pieces.push(Bytes::from_static(b"data: [DONE]\n\n"));
    futures_util::stream::iter(pieces.into_iter().map(Ok::<_, Infallible>))
}

fn tool_piece(call: Value) -> Bytes {
    event(json!({ "object": "chat.completion.chunk",
                  "choices": [{ "index": 0, "delta": { "tool_calls": [call] } }] }))
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
