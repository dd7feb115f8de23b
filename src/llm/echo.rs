//! ECHO: a built-in provider for development and demos. It calls no model: it streams back
//! "Echo: " and the last user message, word by word at a set pace, and counts words as
//! tokens. Offered tools, it calls one when the user message is `/<tool> <JSON arguments>`
//! and then echoes what the tools answered. Deterministic, so demos and tests can rely on what it says. Its embeddings are
//! hashed bags of words (texts sharing words point the same way), enough to try vector
//! search without a model.

use std::time::Duration;

use super::{ChatRequest, Chunk, ToolCallRequest, Usage};

/// The function a `/<tool> <arguments>` message asks for, when `request` offers it and
/// the last message is the user's.
fn asked_call(request: &ChatRequest) -> Option<ToolCallRequest> {
    if request.answer_only || request.messages.last().is_none_or(|m| m.role != "user") {
        return None;
    }
    let text = request.messages.last()?.content.trim().strip_prefix('/')?;
    let (name, arguments) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let tool = request.tools.iter().find(|t| t.name == name)?;
    let arguments = arguments.trim();
    Some(ToolCallRequest {
        id: "echo_call_1".into(),
        name: tool.name.clone(),
        arguments: if arguments.is_empty() {
            "{}".into()
        } else {
            arguments.into()
        },
    })
}

/// One turn: a function call when one is asked for, else the reply streamed; the usage,
/// and the calls.
pub async fn turn(
    request: &ChatRequest,
    pace: Duration,
    on_chunk: impl FnMut(Chunk),
) -> (Option<Usage>, Vec<ToolCallRequest>) {
    match asked_call(request) {
        Some(call) => {
            let usage = Usage {
                prompt_tokens: prompt_words(request),
                completion_tokens: 1,
                total_tokens: prompt_words(request) + 1,
            };
            (Some(usage), vec![call])
        }
        None => (Some(stream_chat(request, pace, on_chunk).await), Vec::new()),
    }
}

fn prompt_words(request: &ChatRequest) -> i32 {
    request
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum::<usize>() as i32
}

/// The reply ECHO gives to `request`: the tools' answers after a call, else the last user
/// message.
pub fn reply(request: &ChatRequest) -> String {
    if request.messages.last().is_some_and(|m| m.role == "tool") {
        let answers: Vec<&str> = request
            .messages
            .iter()
            .rev()
            .take_while(|m| m.role == "tool")
            .map(|m| m.content.trim())
            .collect();
        let answers: Vec<&str> = answers.into_iter().rev().collect();
        return format!("Echo: {}", answers.join(" "));
    }
    let asked = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.trim())
        .unwrap_or("");
    format!("Echo: {asked}")
}

/// Streams the reply word by word (each with its following space), `pace` apart.
pub async fn stream_chat(
    request: &ChatRequest,
    pace: Duration,
    mut on_chunk: impl FnMut(Chunk),
) -> Usage {
    let text = reply(request);
    let mut words = 0;
    for (i, word) in text.split_inclusive(' ').enumerate() {
        if i > 0 && !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
        on_chunk(Chunk::Delta(word.to_string()));
        words += 1;
    }
    let prompt = prompt_words(request);
    let usage = Usage {
        prompt_tokens: prompt,
        completion_tokens: words,
        total_tokens: prompt + words,
    };
    on_chunk(Chunk::Usage(usage));
    usage
}

/// Dimensions of ECHO's embeddings.
pub const EMBEDDING_DIMS: usize = 256;

/// A bag-of-words embedding: each lower-cased word adds ±1 to a dimension picked by its
/// FNV-1a hash.
pub fn embedding(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; EMBEDDING_DIMS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut hash: u64 = 0xcbf29ce484222325;
        for byte in word.to_lowercase().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x100000001b3);
        }
        let slot = (hash % EMBEDDING_DIMS as u64) as usize;
        vector[slot] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    vector
}

/// ECHO's reranking score: the share of the query's distinct words (lower-cased) that the
/// document holds, 0 to 1.
pub fn relevance(query: &str, document: &str) -> f64 {
    let words = |t: &str| -> std::collections::HashSet<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let asked = words(query);
    if asked.is_empty() {
        return 0.0;
    }
    let held = words(document);
    asked.iter().filter(|w| held.contains(*w)).count() as f64 / asked.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ChatMessage;

    #[tokio::test]
    async fn echoes_the_last_user_message_word_by_word() {
        let request = ChatRequest {
            model: "echo".into(),
            messages: vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "first"),
                ChatMessage::new("assistant", "Echo: first"),
                ChatMessage::new("user", "hello there world"),
            ],
            ..ChatRequest::default()
        };
        let mut chunks = Vec::new();
        let usage = stream_chat(&request, Duration::ZERO, |c| chunks.push(c)).await;
        let text: String = chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Delta(d) => Some(d.as_str()),
                Chunk::Usage(_) => None,
            })
            .collect();
        assert_eq!(text, "Echo: hello there world");
        assert_eq!(chunks.len(), 5, "four words and the usage");
        assert_eq!(usage.completion_tokens, 4);
        assert_eq!(usage.prompt_tokens, 2 + 1 + 2 + 3);
    }

    #[tokio::test]
    async fn calls_an_offered_tool_when_asked_then_echoes_its_answer() {
        let tools = vec![crate::llm::ToolSpec {
            name: "add".into(),
            description: None,
            parameters: serde_json::json!({ "type": "object" }),
        }];
        let mut request = ChatRequest {
            model: "echo".into(),
            messages: vec![ChatMessage::new("user", "/add {\"a\": 1}")],
            tools: tools.clone(),
            ..ChatRequest::default()
        };
        let (_, calls) = turn(&request, Duration::ZERO, |_| {}).await;
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "add");
        assert_eq!(calls[0].arguments, "{\"a\": 1}");
        request
            .messages
            .push(ChatMessage::calling("", calls.clone()));
        request
            .messages
            .push(ChatMessage::tool_answer(&calls[0].id, "2"));
        let mut text = String::new();
        let (_, again) = turn(&request, Duration::ZERO, |c| {
            if let Chunk::Delta(d) = c {
                text.push_str(&d)
            }
        })
        .await;
        assert!(again.is_empty());
        assert_eq!(text, "Echo: 2");
        // A tool not offered, or answering only: the message is echoed.
        request.messages.truncate(1);
        request.answer_only = true;
        assert!(turn(&request, Duration::ZERO, |_| {}).await.1.is_empty());
    }
}
