//! Parsed GraphQL documents kept by their text. Frontends send the same few operations over
//! and over, and parsing (async-graphql's pest grammar) cost more than executing a
//! 20-conversation page; a hit costs one hash and one clone. With each document goes the
//! size of its last answer, so the next one is written into a buffer of about its size
//! instead of one grown by copying (a chat history answers 250 KB).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;

/// Documents longer than this are parsed every time (they are rarely repeated).
const MAX_CACHED_TEXT: usize = 16 * 1024;

pub struct DocumentCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

/// The size of a document's last answer, in bytes.
#[derive(Clone, Default)]
pub struct AnswerSize(Arc<AtomicUsize>);

impl AnswerSize {
    /// A buffer for the next answer: the last one's size and an eighth more.
    pub fn buffer(&self) -> Vec<u8> {
        let last = self.0.load(Ordering::Relaxed);
        Vec::with_capacity(last + last / 8)
    }

    pub fn record(&self, bytes: usize) {
        self.0.store(bytes, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Entries {
    documents: HashMap<String, (ExecutableDocument, AnswerSize)>,
    /// Insertion order: the oldest goes first when full.
    order: VecDeque<String>,
}

impl DocumentCache {
    pub fn new(capacity: usize) -> DocumentCache {
        DocumentCache {
            capacity,
            inner: Mutex::new(Entries::default()),
        }
    }

    /// Gives the request its parsed document from the cache, or parses it and keeps it; with
    /// it, the size of its last answer. A document that does not parse is left to the
    /// executor, which reports the error.
    pub fn prepare(&self, request: &mut async_graphql::Request) -> AnswerSize {
        if self.capacity == 0 || request.query.len() > MAX_CACHED_TEXT {
            return AnswerSize::default();
        }
        if let Ok(entries) = self.inner.lock()
            && let Some((document, size)) = entries.documents.get(&request.query)
        {
            request.set_parsed_query(document.clone());
            return size.clone();
        }
        let Ok(document) = parse_query(&request.query) else {
            return AnswerSize::default();
        };
        let size = AnswerSize::default();
        if let Ok(mut entries) = self.inner.lock()
            && !entries.documents.contains_key(&request.query)
        {
            while entries.order.len() >= self.capacity {
                if let Some(oldest) = entries.order.pop_front() {
                    entries.documents.remove(&oldest);
                }
            }
            entries.order.push_back(request.query.clone());
            entries
                .documents
                .insert(request.query.clone(), (document.clone(), size.clone()));
        }
        request.set_parsed_query(document);
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(cache: &DocumentCache) -> usize {
        cache.inner.lock().unwrap().documents.len()
    }

    #[test]
    fn keeps_at_most_its_capacity_and_skips_bad_documents() {
        let cache = DocumentCache::new(2);
        for query in ["{ a }", "{ b }", "{ a }", "{ c }", "{ broken"] {
            let mut request = async_graphql::Request::new(query);
            cache.prepare(&mut request);
        }
        assert_eq!(cached(&cache), 2);
        let entries = cache.inner.lock().unwrap();
        assert!(entries.documents.contains_key("{ c }"));
        assert!(!entries.documents.contains_key("{ a }"));
    }

    #[test]
    fn a_hit_gives_the_same_document() {
        let cache = DocumentCache::new(8);
        let mut first = async_graphql::Request::new("query Q { health { version } }");
        cache.prepare(&mut first);
        let mut second = async_graphql::Request::new("query Q { health { version } }");
        cache.prepare(&mut second).record(1000);
        assert!(cache.prepare(&mut first).buffer().capacity() >= 1000);
        assert_eq!(
            format!("{:?}", first.parsed_query().unwrap()),
            format!("{:?}", second.parsed_query().unwrap())
        );
    }
}
