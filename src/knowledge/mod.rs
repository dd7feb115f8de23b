//! Knowledge bases: datasets and their documents and segments.

pub mod datasets;
pub mod documents;
