//! OpenAI-compatible providers: `POST {baseUrl}/chat/completions` with `stream: true`
//! (Server-Sent Events of `choices[0].delta.content`, then the usage), and
//! `POST {baseUrl}/embeddings`. Refusals and overloads before the first token are retried
//! a bounded number of times with backoff; a provider that stops sending times out.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::sse::SseReader;
use super::{ChatRequest, Chunk, LlmError, ToolCallRequest, Usage};

/// The most functions one turn may call.
const MAX_TOOL_CALLS: usize = 32;
/// The most characters of one call's arguments.
const MAX_ARGUMENTS: usize = 1 << 20;

/// What a streamed completion gave besides its text.
#[derive(Debug, Default)]
pub struct Completion {
    /// As the provider reported it.
    pub usage: Option<Usage>,
    /// The functions it asked to call, in the order it listed them.
    pub tool_calls: Vec<ToolCallRequest>,
}

/// A client of one provider endpoint.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// Attempts after the first, for 429, 5xx, timeouts and refused connections.
    pub retries: u32,
    /// The first wait between attempts; doubled each time.
    pub backoff: Duration,
    /// Longest wait for the answer's headers, then between two pieces of the stream.
    pub timeout: Duration,
}

impl OpenAiClient {
    /// A client sharing `http`'s connection pool: the outbound guard's client
    /// (`outbound::OutboundConfig::client`), whatever the base URL names.
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        api_key: Option<String>,
    ) -> OpenAiClient {
        OpenAiClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            retries: 3,
            backoff: Duration::from_millis(250),
            timeout: Duration::from_secs(60),
        }
    }

    /// Streams a chat completion, handing each piece of text to `on_chunk`; returns the
    /// usage when the provider reported it and the functions it called (their arguments
    /// assembled from the pieces they stream in). Dropping the future closes the connection
    /// to the provider.
    pub async fn stream_chat(
        &self,
        request: &ChatRequest,
        mut on_chunk: impl FnMut(Chunk),
    ) -> Result<Completion, LlmError> {
        let mut body = json!({
            "model": request.model,
            "messages": request.messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = request.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    let mut function = json!({ "name": t.name, "parameters": t.parameters });
                    if let Some(d) = &t.description {
                        function["description"] = json!(d);
                    }
                    json!({ "type": "function", "function": function })
                })
                .collect();
            body["tools"] = json!(tools);
            body["tool_choice"] = json!(if request.answer_only { "none" } else { "auto" });
        }
        let mut response = self.send("chat/completions", &body).await?;
        let mut reader = SseReader::default();
        let mut usage = None;
        let mut calls = CallPieces::default();
        loop {
            let piece = tokio::time::timeout(self.timeout, response.chunk())
                .await
                .map_err(|_| LlmError::Timeout(self.timeout))?
                .map_err(|e| LlmError::Transport(without_url(&e)))?;
            let (events, done) = match piece {
                Some(bytes) => (
                    reader.feed(&bytes).map_err(|_| {
                        LlmError::Protocol(format!(
                            "a stream event is larger than {} bytes",
                            super::sse::MAX_EVENT_BYTES
                        ))
                    })?,
                    false,
                ),
                None => (reader.finish().into_iter().collect(), true),
            };
            for data in events {
                if data.trim() == "[DONE]" {
                    return calls.completion(usage);
                }
                let event: Value = serde_json::from_str(&data)
                    .map_err(|e| LlmError::Protocol(format!("a stream event is not JSON: {e}")))?;
                if let Some(error) = event.get("error") {
                    return Err(LlmError::Provider {
                        status: 200,
                        message: error_message(error),
                    });
                }
                if let Some(text) = event["choices"][0]["delta"]["content"].as_str()
                    && !text.is_empty()
                {
                    on_chunk(Chunk::Delta(text.to_string()));
                }
                if let Some(pieces) = event["choices"][0]["delta"]["tool_calls"].as_array() {
                    pieces.iter().try_for_each(|piece| calls.add(piece))?;
                }
                if let Some(found) = read_usage(&event["usage"]) {
                    usage = Some(found);
                    on_chunk(Chunk::Usage(found));
                }
            }
            if done {
                return calls.completion(usage);
            }
        }
    }

    /// Embeds `inputs` with `model`, one vector per input, in order.
    pub async fn embeddings(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<Vec<Vec<f32>>, LlmError> {
        let body = json!({ "model": model, "input": inputs });
        let response = self.send("embeddings", &body).await?;
        // Room for the vectors asked for (up to 8,192 dimensions as JSON), and no more.
        let limit = EMBEDDINGS_BASE_BYTES + inputs.len() * EMBEDDING_BYTES;
        let answer = self.json_answer(response, limit, "embeddings").await?;
        let mut rows: Vec<(usize, Vec<f32>)> = answer["data"]
            .as_array()
            .ok_or_else(|| LlmError::Protocol("the embeddings answer has no data".into()))?
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let index = row["index"].as_u64().map_or(i, |n| n as usize);
                let vector = row["embedding"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                (index, vector)
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        if rows.len() != inputs.len() {
            return Err(LlmError::Protocol(format!(
                "asked {} embeddings, got {}",
                inputs.len(),
                rows.len()
            )));
        }
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }

    /// Scores `documents` against `query` with a reranking model (`POST {baseUrl}/rerank`,
    /// the shape Jina, Cohere-compatible and vLLM servers serve): the `top_n` best as
    /// (index into `documents`, relevance score), best first.
    pub async fn rerank(
        &self,
        model: &str,
        query: &str,
        documents: &[String],
        top_n: usize,
    ) -> Result<Vec<(usize, f64)>, LlmError> {
        let body = json!({
            "model": model,
            "query": query,
            "documents": documents,
            "top_n": top_n,
            "return_documents": false,
        });
        let response = self.send("rerank", &body).await?;
        let limit = EMBEDDINGS_BASE_BYTES + documents.len() * 256;
        let answer = self.json_answer(response, limit, "rerank").await?;
        read_rerank(&answer, documents.len())
    }

    /// The JSON body of a `what` answer, read up to `limit` bytes (a larger answer is a
    /// protocol error: the client stops reading).
    async fn json_answer(
        &self,
        mut response: reqwest::Response,
        limit: usize,
        what: &str,
    ) -> Result<Value, LlmError> {
        let mut bytes = Vec::new();
        loop {
            let piece = tokio::time::timeout(self.timeout, response.chunk())
                .await
                .map_err(|_| LlmError::Timeout(self.timeout))?
                .map_err(|e| LlmError::Transport(without_url(&e)))?;
            let Some(piece) = piece else { break };
            bytes.extend_from_slice(&piece);
            if bytes.len() > limit {
                return Err(LlmError::Protocol(format!(
                    "the {what} answer is larger than {limit} bytes"
                )));
            }
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| LlmError::Protocol(format!("the {what} answer is not JSON: {e}")))
    }

    /// POSTs `body`, retrying what may pass on a second try, until a 2xx answer.
    async fn send(&self, path: &str, body: &Value) -> Result<reqwest::Response, LlmError> {
        let url = format!("{}/{path}", self.base_url);
        let payload = serde_json::to_vec(body).map_err(|e| LlmError::Protocol(e.to_string()))?;
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    reqwest::header::ACCEPT,
                    "text/event-stream, application/json",
                )
                .body(payload.clone());
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = match tokio::time::timeout(self.timeout, request.send()).await {
                Err(_) => Err(LlmError::Timeout(self.timeout)),
                Ok(Err(e)) => Err(LlmError::Transport(without_url(&e))),
                Ok(Ok(response)) => check_status(response).await,
            };
            match outcome {
                Err(e) if e.is_retryable() && attempt < self.retries => {
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, LlmError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(LlmError::Authentication(status.as_u16()));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(LlmError::RateLimited);
    }
    // Only an OpenAI-shaped `error.message` is passed on, shortened: a body of anything
    // else (a page of an internal service, say) is never echoed to the workspace.
    let text = read_capped(response, ERROR_BODY_LIMIT).await;
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").map(error_message))
        .unwrap_or_else(|| "no error message".into());
    Err(LlmError::Provider {
        status: status.as_u16(),
        message,
    })
}

/// The function calls of a streamed turn as their pieces arrive: each piece names its call
/// by `index`; the first gives its id and name, every one may add to its arguments.
#[derive(Default)]
struct CallPieces {
    calls: Vec<(u64, ToolCallRequest)>,
}

impl CallPieces {
    fn add(&mut self, piece: &Value) -> Result<(), LlmError> {
        let index = piece["index"].as_u64().unwrap_or(self.calls.len() as u64);
        let position = match self.calls.iter().position(|(i, _)| *i == index) {
            Some(p) => p,
            None => {
                if self.calls.len() == MAX_TOOL_CALLS {
                    return Err(LlmError::Protocol(format!(
                        "the model called more than {MAX_TOOL_CALLS} functions in one turn"
                    )));
                }
                self.calls.push((index, ToolCallRequest::default()));
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[position].1;
        if let Some(id) = piece["id"].as_str().filter(|id| !id.is_empty()) {
            call.id = id.chars().take(200).collect();
        }
        if let Some(name) = piece["function"]["name"].as_str() {
            call.name.push_str(name);
        }
        if let Some(arguments) = piece["function"]["arguments"].as_str() {
            if call.arguments.len() + arguments.len() > MAX_ARGUMENTS {
                return Err(LlmError::Protocol(format!(
                    "a function call's arguments are longer than {MAX_ARGUMENTS} bytes"
                )));
            }
            call.arguments.push_str(arguments);
        }
        Ok(())
    }

    fn completion(self, usage: Option<Usage>) -> Result<Completion, LlmError> {
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (index, mut call) in self.calls {
            if call.name.is_empty() {
                return Err(LlmError::Protocol("a function call has no name".into()));
            }
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            tool_calls.push(call);
        }
        Ok(Completion { usage, tool_calls })
    }
}

/// The room an embeddings answer may take: its envelope, and each vector.
const EMBEDDINGS_BASE_BYTES: usize = 64 * 1024;

/// The results of a rerank answer (`results: [{index, relevance_score}]`), best first; an
/// index out of range, a repeated one or a score that is not a number is a protocol error.
fn read_rerank(answer: &Value, documents: usize) -> Result<Vec<(usize, f64)>, LlmError> {
    let rows = answer["results"]
        .as_array()
        .ok_or_else(|| LlmError::Protocol("the rerank answer has no results".into()))?;
    let mut seen = vec![false; documents];
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        let index = row["index"]
            .as_u64()
            .map(|i| i as usize)
            .filter(|i| *i < documents && !seen[*i])
            .ok_or_else(|| LlmError::Protocol("a rerank result names no document asked".into()))?;
        let score = row["relevance_score"]
            .as_f64()
            .filter(|s| s.is_finite())
            .ok_or_else(|| LlmError::Protocol("a rerank result has no relevance_score".into()))?;
        seen[index] = true;
        results.push((index, score));
    }
    best_first(&mut results);
    Ok(results)
}

/// Orders (index, score) pairs best first, ties by index.
pub fn best_first(scored: &mut [(usize, f64)]) {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
}
const EMBEDDING_BYTES: usize = 8192 * 24;

/// The most of an error answer read.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// At most `limit` bytes of an answer's body, as text.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(piece)) = response.chunk().await {
        body.extend_from_slice(&piece);
        if body.len() >= limit {
            body.truncate(limit);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

fn error_message(error: &Value) -> String {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string());
    message.chars().take(300).collect()
}

fn read_usage(usage: &Value) -> Option<Usage> {
    let number = |k: &str| usage.get(k).and_then(Value::as_i64).map(|n| n as i32);
    let prompt = number("prompt_tokens")?;
    let completion = number("completion_tokens").unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: number("total_tokens").unwrap_or(prompt + completion),
    })
}

/// What went wrong in transport, without the URL (which may carry credentials).
fn without_url(error: &reqwest::Error) -> String {
    if let Some(refused) = crate::outbound::Refused::within(error) {
        refused.0
    } else if error.is_connect() {
        "the connection was refused or the host is unreachable".into()
    } else if error.is_timeout() {
        "the connection timed out".into()
    } else if error.is_body() || error.is_decode() {
        "the answer broke off".into()
    } else {
        "the request failed".into()
    }
}
