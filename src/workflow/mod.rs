//! Workflows: graphs validated as DAGs, stored as immutable numbered versions; the
//! current version is the draft builders edit, `publishing` pins what applications run;
//! `published` is what a public template may show of a graph.

pub mod executions;
pub mod graph;
pub mod published;
pub mod publishing;
pub mod run;
pub mod service;
pub mod templates;

pub use graph::{Graph, GraphConnection, GraphNode, NodeType};
