//! Knowledge bases: datasets, their documents and segments, indexing and retrieval.
//!
//! - `datasets`, `documents`, `segments`: what builders create and change.
//! - `indexing`: the job that turns a document into segments (`extract` its text, `text`
//!   cleaning and keywords, `split` by structure and size into the `chunk` mode's segments
//!   (general, parent-child, question-answer), `tokens` counted, `embed`).
//! - `retrieval`: a search: `metadata` filters, `keyword` ranking (BM25), `vectors` (the
//!   embeddings in memory, scanned or, for large datasets, through an `approximate`
//!   graph), their `fusion`, and `rerank`.

pub mod approximate;
pub mod chunk;
pub mod datasets;
pub mod documents;
pub mod embed;
pub mod extract;
pub mod fusion;
pub mod indexing;
pub mod keyword;
pub mod metadata;
pub mod rerank;
pub mod retrieval;
pub mod segments;
pub mod split;
pub mod text;
pub mod tokens;
pub mod vectors;
