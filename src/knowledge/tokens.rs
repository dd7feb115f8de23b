//! Token counts with the OpenAI tokenizer (cl100k_base, from `tiktoken-rs`): how documents
//! are split and what a segment's `tokens` says.

use tiktoken_rs::CoreBPE;

fn tokenizer() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Loads the tokenizer (at start-up, so the first indexing does not pay for it).
pub fn warm_up() {
    let _ = count("warm up");
}

/// The number of tokens of `text`.
pub fn count(text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    tokenizer().encode_ordinary(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_the_openai_tokenizer_does() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("The quick brown fox jumps over the lazy dog."), 10);
    }
}
