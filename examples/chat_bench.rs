//! The chat benchmark of `bench/chat`: CHATS concurrent end users each send a message to a
//! published chat application whose LLM node calls an OpenAI-compatible server run by this
//! process, which streams TOKENS tokens per reply, one every TOKEN_MS. Each token carries
//! the time it was sent (µs since the epoch), so the client, reading the reply over
//! WebSocket (graphql-transport-ws), measures what the server adds: from the provider's
//! chunk to the client's receipt, for the first token and between tokens.
//!
//!   chat_bench CHATS TOKENS TOKEN_MS
//!
//! Reads WEFT_URL (the server) and WEFT_PID (its process, for CPU time).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod api;

use api::{Error, Socket, cpu_seconds, now_micros, percentile};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(number(0, 100), number(1, 200), number(2, 10)))
}

/// When the model server saw a long reply's client hang up (µs since the epoch).
static HUNG_UP: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// Records the time a long reply's connection was dropped.
struct HangUp;

impl Drop for HangUp {
    fn drop(&mut self) {
        if let Ok(mut seen) = HUNG_UP.lock() {
            seen.push(now_micros());
        }
    }
}

/// The OpenAI-compatible server: every token is its send time and a space. A question
/// containing "stop-me" gets a reply that goes on until the client hangs up.
async fn model_server(tokens: u64, pace: Duration) -> Result<String, Error> {
    let chat = move |body: String| async move {
        if body.contains("stop-me") {
            let stream = futures_util::stream::unfold(HangUp, move |guard| async move {
                tokio::time::sleep(pace).await;
                let chunk = json!({ "choices": [{ "index": 0, "delta": { "content": format!("{} ", now_micros()) } }] });
                Some((
                    Ok::<_, Infallible>(Bytes::from(format!("data: {chunk}\n\n"))),
                    guard,
                ))
            });
            return axum::response::Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap_or_default();
        }
        let stream = futures_util::stream::unfold(0u64, move |i| async move {
            if i > tokens {
                return None;
            }
            if i == tokens {
                let end = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":200,\"total_tokens\":210}}\n\ndata: [DONE]\n\n";
                return Some((Ok::<_, Infallible>(Bytes::from(end)), i + 1));
            }
            if i > 0 {
                tokio::time::sleep(pace).await;
            }
            let chunk = json!({ "choices": [{ "index": 0, "delta": { "content": format!("{} ", now_micros()) } }] });
            Some((Ok(Bytes::from(format!("data: {chunk}\n\n"))), i + 1))
        });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap_or_default()
    };
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    api::serve(router, "/v1").await
}

struct Setup {
    base: String,
    application: String,
    key: String,
}

async fn setup(model_url: &str) -> Result<Setup, Error> {
    let api = api::Api::from_env();
    let made = api.chat_application("chat-bench", model_url).await?;
    Ok(Setup {
        base: api.base.clone(),
        application: made.application,
        key: made.key,
    })
}

async fn socket(setup: &Setup) -> Result<Socket, Error> {
    api::socket(&setup.base, &setup.key).await
}

async fn send(setup: &Setup, query: &str, user: &str) -> Result<String, Error> {
    let sent: Value = reqwest::Client::new()
        .post(format!("{}/graphql", setup.base))
        .bearer_auth(&setup.key)
        .json(&json!({ "query": "mutation($i: SendMessageInput!) { sendMessage(input: $i) { assistantMessage { id } } }",
                       "variables": { "i": { "applicationId": setup.application, "query": query,
                                             "endUserId": user } } }))
        .send()
        .await?
        .json()
        .await?;
    Ok(sent["data"]["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .ok_or_else(|| format!("sendMessage failed: {sent}"))?
        .to_string())
}

async fn subscribe(socket: &mut Socket, message: &str) -> Result<(), Error> {
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($m: UUID!) { messageStream(messageId: $m) { seq kind delta message { status } } }",
        "variables": { "m": message } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    Ok(())
}

/// Stops: after five tokens of a reply that would not end, `stopMessage`; how long until it
/// returned, until END reached the client, and until the provider saw its connection closed.
async fn stops(setup: &Setup, n: usize) -> Result<(), Error> {
    let (mut returned, mut ended, mut hung_up) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let mut socket = socket(setup).await?;
        let message = send(setup, &format!("stop-me {i}"), "bench-stopper").await?;
        subscribe(&mut socket, &message).await?;
        let mut deltas = 0;
        while deltas < 5 {
            let Some(Ok(Message::Text(text))) = socket.next().await else {
                return Err("the stream broke".into());
            };
            if text.contains("\"DELTA\"") {
                deltas += 1;
            }
        }
        let before = HUNG_UP.lock().map(|h| h.len()).unwrap_or(0);
        let asked = now_micros();
        let stopped: Value = reqwest::Client::new()
            .post(format!("{}/graphql", setup.base))
            .bearer_auth(&setup.key)
            .json(
                &json!({ "query": "mutation($m: UUID!) { stopMessage(messageId: $m) { status } }",
                           "variables": { "m": message } }),
            )
            .send()
            .await?
            .json()
            .await?;
        returned.push(now_micros() - asked);
        if stopped["data"]["stopMessage"]["status"] != "STOPPED" {
            return Err(format!("not stopped: {stopped}").into());
        }
        loop {
            let Some(Ok(Message::Text(text))) = socket.next().await else {
                return Err("the stream broke".into());
            };
            if text.contains("\"END\"") {
                ended.push(now_micros() - asked);
                break;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = HUNG_UP
                .lock()
                .map(|h| h.get(before).copied())
                .unwrap_or(None);
            if let Some(at) = seen {
                hung_up.push(at.saturating_sub(asked));
                break;
            }
            if Instant::now() > deadline {
                return Err("the provider never saw the hang-up".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    for list in [&mut returned, &mut ended, &mut hung_up] {
        list.sort_unstable();
    }
    println!(
        "stop ({n} replies): stopMessage returned p50 {:.1} ms max {:.1} ms; END received p50 {:.1} ms max {:.1} ms; provider connection closed p50 {:.1} ms max {:.1} ms",
        percentile(&returned, 0.5),
        percentile(&returned, 1.0),
        percentile(&ended, 0.5),
        percentile(&ended, 1.0),
        percentile(&hung_up, 0.5),
        percentile(&hung_up, 1.0),
    );
    Ok(())
}

#[derive(Default)]
struct Chat {
    first_us: Vec<u64>,
    between_us: Vec<u64>,
    tokens: u64,
    ended: bool,
}

/// One end user: opens a socket, sends a message, reads the reply to its END.
async fn chat(setup: &Setup, n: u64) -> Result<Chat, Error> {
    let mut socket = socket(setup).await?;
    let message = send(setup, "Count for me", &format!("bench-user-{n}")).await?;
    subscribe(&mut socket, &message).await?;
    let mut got = Chat::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = next else {
            if matches!(next, Ok(Some(Ok(_)))) {
                continue;
            }
            break;
        };
        let received = now_micros();
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] == "complete" {
            break;
        }
        let event = &frame["payload"]["data"]["messageStream"];
        match event["kind"].as_str() {
            Some("DELTA") => {
                for token in event["delta"].as_str().unwrap_or("").split_whitespace() {
                    let Ok(sent) = token.parse::<u64>() else {
                        continue;
                    };
                    let added = received.saturating_sub(sent);
                    if got.tokens == 0 {
                        got.first_us.push(added);
                    } else {
                        got.between_us.push(added);
                    }
                    got.tokens += 1;
                }
            }
            Some("END") => got.ended = true,
            _ => {}
        }
    }
    Ok(got)
}

async fn run(chats: u64, tokens: u64, pace_ms: u64) -> Result<(), Error> {
    let model_url = model_server(tokens, Duration::from_millis(pace_ms)).await?;
    let setup = setup(&model_url).await?;
    let pid = std::env::var("WEFT_PID").ok();
    let cpu_before = pid.as_deref().map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let results: Vec<Result<Chat, Error>> = futures_util::stream::iter(0..chats)
        .map(|n| chat(&setup, n))
        .buffer_unordered(chats as usize)
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (pid.as_deref(), cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_seconds(pid)? - before),
        _ => None,
    };
    let mut first = Vec::new();
    let mut between = Vec::new();
    let (mut delivered, mut ended, mut failed) = (0u64, 0u64, 0u64);
    for result in results {
        match result {
            Ok(chat) => {
                first.extend(chat.first_us);
                between.extend(chat.between_us);
                delivered += chat.tokens;
                ended += u64::from(chat.ended);
            }
            Err(e) => {
                failed += 1;
                eprintln!("a chat failed: {e}");
            }
        }
    }
    first.sort_unstable();
    between.sort_unstable();
    println!(
        "chats {chats} x {tokens} tokens every {pace_ms} ms: {delivered} of {} tokens delivered, {ended} replies ended, {failed} failed, in {wall:.2} s ({:.0} tokens/s)",
        chats * tokens,
        delivered as f64 / wall
    );
    println!(
        "added latency, first token:    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&first, 0.5),
        percentile(&first, 0.99),
        percentile(&first, 1.0)
    );
    println!(
        "added latency, between tokens: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&between, 0.5),
        percentile(&between, 0.99),
        percentile(&between, 1.0)
    );
    if let Some(cpu) = cpu {
        println!("server CPU: {cpu:.2} s ({:.2} cores)", cpu / wall);
    }
    stops(&setup, 10).await
}
