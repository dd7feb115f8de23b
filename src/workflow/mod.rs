//! Workflows: graphs validated as DAGs, stored as immutable numbered versions.

pub mod graph;
pub mod service;

pub use graph::{Graph, GraphConnection, GraphNode, NodeType};
