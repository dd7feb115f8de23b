//! Workflows: graphs validated as DAGs, stored as immutable numbered versions.

pub mod executions;
pub mod graph;
pub mod published;
pub mod run;
pub mod service;
pub mod templates;

pub use graph::{Graph, GraphConnection, GraphNode, NodeType};
