//! The order a graph runs in: a node runs once every node leading into it has settled and
//! at least one of its incoming connections is live; it is SKIPPED when none is (every
//! source skipped, or a CONDITION left through the other handle). Independent nodes become
//! ready together and run concurrently.

use std::collections::HashMap;

use crate::workflow::graph::{Graph, GraphNode, NodeType};

/// Where a node is in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Waiting,
    Running,
    /// Finished; a CONDITION records the handle it left through.
    Done {
        branch: Option<bool>,
    },
    Skipped,
    Failed,
}

/// What `settle` decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub run: Vec<usize>,
    pub skip: Vec<usize>,
}

struct Edge {
    source: usize,
    handle: Option<bool>,
}

/// A graph, indexed for running.
pub struct Plan {
    pub nodes: Vec<GraphNode>,
    incoming: Vec<Vec<Edge>>,
    index: HashMap<String, usize>,
}

impl Plan {
    /// Indexes a validated graph.
    pub fn new(graph: Graph) -> Plan {
        let index: HashMap<String, usize> = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.clone(), i))
            .collect();
        let mut incoming: Vec<Vec<Edge>> = graph.nodes.iter().map(|_| Vec::new()).collect();
        for connection in &graph.connections {
            let (Some(&source), Some(&target)) =
                (index.get(&connection.source), index.get(&connection.target))
            else {
                continue;
            };
            incoming[target].push(Edge {
                source,
                handle: connection.source_handle.as_deref().map(|h| h == "true"),
            });
        }
        Plan {
            nodes: graph.nodes,
            incoming,
            index,
        }
    }

    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The START node, which runs first.
    pub fn start(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.node_type == NodeType::Start)
    }

    /// Whether `ancestor` runs before `node` on every path (it leads into it).
    pub fn is_upstream(&self, ancestor: usize, node: usize) -> bool {
        let mut stack = vec![node];
        let mut seen = vec![false; self.nodes.len()];
        while let Some(n) = stack.pop() {
            for edge in &self.incoming[n] {
                if edge.source == ancestor {
                    return true;
                }
                if !seen[edge.source] {
                    seen[edge.source] = true;
                    stack.push(edge.source);
                }
            }
        }
        false
    }

    /// Moves waiting nodes whose sources have all settled to running or skipped (and so
    /// on, as skips settle further nodes); returns what changed.
    pub fn settle(&self, states: &mut [NodeState]) -> Settled {
        let mut settled = Settled::default();
        loop {
            let mut changed = false;
            for node in 0..self.nodes.len() {
                if states[node] != NodeState::Waiting || self.incoming[node].is_empty() {
                    continue;
                }
                let mut live = false;
                let mut all_settled = true;
                for edge in &self.incoming[node] {
                    match states[edge.source] {
                        NodeState::Done { branch } => {
                            if edge.handle.is_none() || edge.handle == branch {
                                live = true;
                            }
                        }
                        NodeState::Skipped | NodeState::Failed => {}
                        NodeState::Waiting | NodeState::Running => all_settled = false,
                    }
                }
                if !all_settled {
                    continue;
                }
                changed = true;
                if live {
                    states[node] = NodeState::Running;
                    settled.run.push(node);
                } else {
                    states[node] = NodeState::Skipped;
                    settled.skip.push(node);
                }
            }
            if !changed {
                return settled;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan() -> Plan {
        // start → check ─true→ yes → join
        //               └false→ no ─→ join
        // start → side (independent branch)
        let graph: Graph = serde_json::from_value(json!({
            "nodes": [
                { "key": "start", "type": "START", "config": {} },
                { "key": "check", "type": "CONDITION", "config": {} },
                { "key": "yes", "type": "TEMPLATE", "config": {} },
                { "key": "no", "type": "TEMPLATE", "config": {} },
                { "key": "join", "type": "ANSWER", "config": {} },
                { "key": "side", "type": "TEMPLATE", "config": {} },
                { "key": "after_no", "type": "TEMPLATE", "config": {} }
            ],
            "connections": [
                { "source": "start", "target": "check" },
                { "source": "check", "target": "yes", "sourceHandle": "true" },
                { "source": "check", "target": "no", "sourceHandle": "false" },
                { "source": "yes", "target": "join" },
                { "source": "no", "target": "join" },
                { "source": "no", "target": "after_no" },
                { "source": "start", "target": "side" }
            ]
        }))
        .unwrap();
        Plan::new(graph)
    }

    #[test]
    fn a_condition_skips_the_branch_not_taken_and_its_descendants() {
        let plan = plan();
        let mut states = vec![NodeState::Waiting; plan.nodes.len()];
        let start = plan.start().unwrap();
        states[start] = NodeState::Done { branch: None };
        let first = plan.settle(&mut states);
        assert_eq!(first.run, vec![1, 5], "check and side run together");
        states[1] = NodeState::Done { branch: Some(true) };
        let second = plan.settle(&mut states);
        assert_eq!(second.run, vec![2]);
        assert_eq!(second.skip, vec![3, 6], "no, and what only follows no");
        states[2] = NodeState::Done { branch: None };
        let third = plan.settle(&mut states);
        assert_eq!(
            third.run,
            vec![4],
            "join runs: one live connection is enough"
        );
        assert!(plan.is_upstream(0, 4) && plan.is_upstream(2, 4) && !plan.is_upstream(5, 4));
    }
}
