//! Knowledge bases: datasets, their documents and segments, indexing and retrieval.
//!
//! - `datasets`, `documents`, `segments`: what builders create and change.
//! - `indexing`: the job that turns a document into segments (`extract` its text, `text`
//!   cleaning and keywords, `split` by structure and size, `tokens` counted, `embed`).
//! - `retrieval`: keyword and vector search combined; `vectors` the embeddings in memory.

pub mod datasets;
pub mod documents;
pub mod embed;
pub mod extract;
pub mod indexing;
pub mod retrieval;
pub mod segments;
pub mod split;
pub mod text;
pub mod tokens;
pub mod vectors;
