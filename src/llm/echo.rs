//! ECHO: a built-in provider for development and demos. It calls no model: it streams back
//! "Echo: " and the last user message, word by word at a set pace, and counts words as
//! tokens. Deterministic, so demos and tests can rely on what it says. Its embeddings are
//! hashed bags of words (texts sharing words point the same way), enough to try vector
//! search without a model.

use std::time::Duration;

use super::{ChatRequest, Chunk, Usage};

/// The reply ECHO gives to `request`.
pub fn reply(request: &ChatRequest) -> String {
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
    let prompt: usize = request
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum();
    let usage = Usage {
        prompt_tokens: prompt as i32,
        completion_tokens: words,
        total_tokens: prompt as i32 + words,
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
            temperature: None,
            max_tokens: None,
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
}
