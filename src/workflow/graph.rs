//! A workflow graph and its validation (API.md, "Workflow graphs"): a DAG with exactly one
//! START, every node reachable from it, unique keys, each node's config of the right shape,
//! and every `{{key.field}}` reference pointing at an upstream node. A bad graph is
//! BAD_USER_INPUT naming the offending node; a valid one is stored as given.

use std::collections::{HashMap, HashSet, VecDeque};

use async_graphql::Enum;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, AppResult};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeType {
    Start,
    Llm,
    KnowledgeRetrieval,
    Template,
    Condition,
    HttpRequest,
    Answer,
    End,
    Code,
    Tool,
    Agent,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Start => "START",
            NodeType::Llm => "LLM",
            NodeType::KnowledgeRetrieval => "KNOWLEDGE_RETRIEVAL",
            NodeType::Template => "TEMPLATE",
            NodeType::Condition => "CONDITION",
            NodeType::HttpRequest => "HTTP_REQUEST",
            NodeType::Answer => "ANSWER",
            NodeType::End => "END",
            NodeType::Code => "CODE",
            NodeType::Tool => "TOOL",
            NodeType::Agent => "AGENT",
        }
    }

    pub fn parse(text: &str) -> Option<NodeType> {
        serde_json::from_value(Value::String(text.to_string())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub key: String,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphConnection {
    pub source: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_handle: Option<String>,
}

/// A workflow graph, as sent and as stored in `workflow_versions.graph`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub connections: Vec<GraphConnection>,
}

/// Variables of `{{sys.<name>}}`.
const SYS_VARIABLES: [&str; 3] = ["query", "conversationId", "endUserId"];
const MAX_NODES: usize = 500;
/// The most turns of tool calls an AGENT node may ask for (`maxIterations`).
pub const MAX_AGENT_ITERATIONS: u64 = 20;

fn node_error(index: usize, key: &str, message: impl std::fmt::Display) -> AppError {
    AppError::bad_input(
        format!("graph.nodes[{index}]"),
        format!("node \"{key}\": {message}"),
    )
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `{{root.path}}` references in every string of a config value.
pub fn references(value: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else { break };
                let inner = after[..end].trim();
                if let Some((root, path)) = inner.split_once('.') {
                    found.push((root.trim().to_string(), path.trim().to_string()));
                } else if !inner.is_empty() {
                    found.push((inner.to_string(), String::new()));
                }
                rest = &after[end + 2..];
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

fn string_field(
    map: &serde_json::Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<(), String> {
    match map.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if !required || !s.trim().is_empty() => Ok(()),
        _ if required => Err(format!(
            "config.{field} is required and must be a non-empty string"
        )),
        _ => Err(format!("config.{field} must be a string")),
    }
}

fn number_field(
    map: &serde_json::Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
    integer: bool,
) -> Result<(), String> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let ok = v
                .as_f64()
                .is_some_and(|n| n >= min && n <= max && (!integer || n.fract() == 0.0));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "config.{field} must be a{} number from {min} to {max}",
                    if integer { "n integer" } else { "" }
                ))
            }
        }
    }
}

/// Checks the shape of one node's config.
fn check_config(node: &GraphNode) -> Result<(), String> {
    let map = node.config.as_object().ok_or("config must be an object")?;
    match node.node_type {
        NodeType::Start => {
            let Some(inputs) = map.get("inputs") else {
                return Ok(());
            };
            let inputs = inputs.as_array().ok_or("config.inputs must be a list")?;
            let mut names = HashSet::new();
            for input in inputs {
                let name = input
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("each input needs a name")?;
                if !is_identifier(name) {
                    return Err(format!(
                        "input name {name:?} must be a letter or _ followed by letters, digits or _"
                    ));
                }
                if !names.insert(name) {
                    return Err(format!("input {name:?} is declared twice"));
                }
                let ty = input
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string");
                if !["string", "number", "boolean", "json"].contains(&ty) {
                    return Err(format!("input {name:?} has unknown type {ty:?}"));
                }
                if input.get("required").is_some_and(|r| !r.is_boolean()) {
                    return Err(format!("input {name:?}: required must be true or false"));
                }
            }
            Ok(())
        }
        NodeType::Llm => check_model(map),
        NodeType::Agent => {
            check_model(map)?;
            number_field(map, "maxIterations", 1.0, MAX_AGENT_ITERATIONS as f64, true)?;
            crate::tools::agent_tools(&node.config).map(|_| ())
        }
        NodeType::KnowledgeRetrieval => {
            let ids = map
                .get("datasetIds")
                .and_then(Value::as_array)
                .filter(|ids| !ids.is_empty())
                .ok_or("config.datasetIds must be a non-empty list of dataset ids")?;
            for id in ids {
                id.as_str()
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                    .ok_or("config.datasetIds must hold UUIDs")?;
            }
            string_field(map, "query", true)?;
            number_field(map, "topK", 1.0, 100.0, true)?;
            number_field(map, "scoreThreshold", 0.0, 1.0, false)?;
            match map.get("metadataFilter") {
                None | Some(Value::Null) => {}
                // Values from variables are checked when the node runs.
                Some(filter) if filter.is_array() && filter.to_string().contains("{{") => {}
                Some(filter) => {
                    crate::knowledge::metadata::MetadataFilter::parse(filter)
                        .map_err(|e| format!("config.metadataFilter: {e}"))?;
                }
            }
            string_field(map, "rerankProviderId", false)?;
            string_field(map, "rerankModel", false)?;
            let given = |field: &str| map.get(field).and_then(Value::as_str).is_some();
            match (given("rerankProviderId"), given("rerankModel")) {
                (false, false) => Ok(()),
                (true, true) => {
                    if let Some(Value::String(id)) = map.get("rerankProviderId") {
                        uuid::Uuid::parse_str(id)
                            .map_err(|_| "config.rerankProviderId must be a UUID".to_string())?;
                    }
                    Ok(())
                }
                _ => Err("config.rerankProviderId and config.rerankModel go together".into()),
            }
        }
        NodeType::Template => string_field(map, "template", true),
        NodeType::Condition => {
            match map.get("logic").and_then(Value::as_str) {
                None | Some("and") | Some("or") => {}
                Some(other) => {
                    return Err(format!(
                        "config.logic must be \"and\" or \"or\", not {other:?}"
                    ));
                }
            }
            let conditions = map
                .get("conditions")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
                .ok_or("config.conditions must be a non-empty list")?;
            for condition in conditions {
                condition
                    .get("variable")
                    .and_then(Value::as_str)
                    .filter(|v| !v.trim().is_empty())
                    .ok_or("each condition needs a variable")?;
                let operator = condition
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !["eq", "ne", "contains", "gt", "lt", "empty", "not_empty"].contains(&operator) {
                    return Err(format!("unknown condition operator {operator:?}"));
                }
            }
            Ok(())
        }
        NodeType::HttpRequest => {
            let method = map.get("method").and_then(Value::as_str).unwrap_or("GET");
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method) {
                return Err(format!(
                    "config.method {method:?} is not an HTTP method this node sends"
                ));
            }
            string_field(map, "url", true)?;
            match map.get("headers") {
                None | Some(Value::Null) => {}
                Some(Value::Object(h)) if h.values().all(Value::is_string) => {}
                _ => return Err("config.headers must be an object of strings".into()),
            }
            number_field(map, "timeoutMs", 1.0, 300_000.0, true)
        }
        NodeType::Answer => string_field(map, "answer", true),
        NodeType::Code => check_code(map),
        NodeType::Tool => {
            let tool = map.get("tool").ok_or("config.tool is required")?;
            crate::tools::ToolRef::parse(tool).map_err(|e| format!("config.tool: {e}"))?;
            match map.get("arguments") {
                None | Some(Value::Null) => Ok(()),
                Some(Value::Object(arguments)) if arguments.len() <= 100 => Ok(()),
                _ => Err("config.arguments must map argument names to templates or values".into()),
            }
        }
        NodeType::End => match map.get("outputs") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(o))
                if o.keys().all(|k| is_identifier(k)) && o.values().all(Value::is_string) =>
            {
                Ok(())
            }
            _ => Err("config.outputs must map output names to template strings".into()),
        },
    }
}

/// The model fields of LLM and AGENT nodes.
fn check_model(map: &serde_json::Map<String, Value>) -> Result<(), String> {
    string_field(map, "providerId", true)?;
    if let Some(Value::String(id)) = map.get("providerId") {
        uuid::Uuid::parse_str(id).map_err(|_| "config.providerId must be a UUID".to_string())?;
    }
    string_field(map, "model", false)?;
    string_field(map, "systemPrompt", false)?;
    string_field(map, "prompt", true)?;
    number_field(map, "temperature", 0.0, 2.0, false)?;
    number_field(map, "maxTokens", 1.0, 1_000_000.0, true)?;
    match map.get("memory") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        _ => Err("config.memory must be true or false".into()),
    }
}

/// The most characters of a CODE node's code.
const MAX_CODE: usize = 100_000;

/// A CODE node: JAVASCRIPT code that parses and defines `main`, and inputs that are
/// templates under identifier names.
fn check_code(map: &serde_json::Map<String, Value>) -> Result<(), String> {
    match map.get("language").and_then(Value::as_str) {
        None | Some("JAVASCRIPT") => {}
        Some(other) => {
            return Err(format!(
                "config.language {other:?} is not supported (JAVASCRIPT is)"
            ));
        }
    }
    string_field(map, "code", true)?;
    let code = map.get("code").and_then(Value::as_str).unwrap_or("");
    if code.chars().count() > MAX_CODE {
        return Err(format!("config.code is longer than {MAX_CODE} characters"));
    }
    match map.get("inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(inputs))
            if inputs.keys().all(|k| is_identifier(k)) && inputs.values().all(Value::is_string) => {
        }
        _ => return Err("config.inputs must map input names to template strings".into()),
    }
    crate::sandbox::check(code).map_err(|e| format!("config.code: {e}"))
}

impl Graph {
    /// Validates the whole graph; the first problem found is the error.
    pub fn validate(&self) -> AppResult<()> {
        if self.nodes.len() > MAX_NODES {
            return Err(AppError::bad_input(
                "graph.nodes",
                format!("a graph has at most {MAX_NODES} nodes"),
            ));
        }
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !is_identifier(&node.key) || node.key.len() > 100 {
                return Err(node_error(
                    i,
                    &node.key,
                    "a key is a letter or _ followed by letters, digits or _ (at most 100)",
                ));
            }
            if node.key == "sys" {
                return Err(node_error(
                    i,
                    &node.key,
                    "\"sys\" is reserved for system variables",
                ));
            }
            if index.insert(node.key.as_str(), i).is_some() {
                return Err(node_error(i, &node.key, "the key is used by another node"));
            }
            if node.title.as_ref().is_some_and(|t| t.chars().count() > 255) {
                return Err(node_error(
                    i,
                    &node.key,
                    "the title is longer than 255 characters",
                ));
            }
            check_config(node).map_err(|m| node_error(i, &node.key, m))?;
        }
        let starts: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].node_type == NodeType::Start)
            .collect();
        let start = match starts.as_slice() {
            [one] => *one,
            [] => {
                return Err(AppError::bad_input(
                    "graph.nodes",
                    "a graph needs exactly one START node (it has none)",
                ));
            }
            [_, second, ..] => {
                return Err(node_error(
                    *second,
                    &self.nodes[*second].key,
                    "a graph has exactly one START node",
                ));
            }
        };

        let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        let mut incoming: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        let mut seen = HashSet::new();
        for (c, connection) in self.connections.iter().enumerate() {
            let field = format!("graph.connections[{c}]");
            let source = *index.get(connection.source.as_str()).ok_or_else(|| {
                AppError::bad_input(
                    &field,
                    format!("no node has the key \"{}\"", connection.source),
                )
            })?;
            let target = *index.get(connection.target.as_str()).ok_or_else(|| {
                AppError::bad_input(
                    &field,
                    format!("no node has the key \"{}\"", connection.target),
                )
            })?;
            if source == target {
                return Err(node_error(
                    source,
                    &connection.source,
                    "a node cannot connect to itself",
                ));
            }
            if self.nodes[target].node_type == NodeType::Start {
                return Err(node_error(
                    target,
                    &connection.target,
                    "nothing may lead into the START node",
                ));
            }
            let handle = connection.source_handle.as_deref();
            match (self.nodes[source].node_type, handle) {
                (NodeType::Condition, Some("true") | Some("false")) => {}
                (NodeType::Condition, _) => {
                    return Err(node_error(
                        source,
                        &connection.source,
                        "a CONDITION leaves through sourceHandle \"true\" or \"false\"",
                    ));
                }
                (_, None) => {}
                (_, Some(_)) => {
                    return Err(node_error(
                        source,
                        &connection.source,
                        "only a CONDITION node has source handles",
                    ));
                }
            }
            if !seen.insert((source, target, handle)) {
                return Err(AppError::bad_input(
                    field,
                    "the same connection is given twice",
                ));
            }
            if matches!(self.nodes[source].node_type, NodeType::End) {
                return Err(node_error(
                    source,
                    &connection.source,
                    "an END node has no successors",
                ));
            }
            outgoing[source].push(target);
            incoming[target].push(source);
        }

        // Kahn's algorithm: whatever is left over lies on a cycle.
        let mut indegree: Vec<usize> = incoming.iter().map(Vec::len).collect();
        let mut queue: VecDeque<usize> = (0..self.nodes.len())
            .filter(|&i| indegree[i] == 0)
            .collect();
        let mut ordered = 0;
        while let Some(n) = queue.pop_front() {
            ordered += 1;
            for &m in &outgoing[n] {
                indegree[m] -= 1;
                if indegree[m] == 0 {
                    queue.push_back(m);
                }
            }
        }
        if ordered < self.nodes.len() {
            let on_cycle = (0..self.nodes.len())
                .find(|&i| indegree[i] > 0)
                .unwrap_or(0);
            return Err(node_error(
                on_cycle,
                &self.nodes[on_cycle].key,
                "the node is on a cycle: a workflow is a DAG",
            ));
        }

        let reachable = walk(start, &outgoing);
        if let Some(i) = (0..self.nodes.len()).find(|i| !reachable.contains(i)) {
            return Err(node_error(
                i,
                &self.nodes[i].key,
                "the node cannot be reached from START",
            ));
        }

        for (i, node) in self.nodes.iter().enumerate() {
            let upstream = walk_up(i, &incoming);
            let mut refs = references(&node.config);
            if node.node_type == NodeType::Condition {
                // Conditions name their variable bare: "llm.text" as well as "{{llm.text}}".
                if let Some(conditions) = node.config.get("conditions").and_then(Value::as_array) {
                    for variable in conditions
                        .iter()
                        .filter_map(|c| c.get("variable").and_then(Value::as_str))
                    {
                        if !variable.contains("{{") {
                            let (root, path) = variable
                                .trim()
                                .split_once('.')
                                .unwrap_or((variable.trim(), ""));
                            refs.push((root.to_string(), path.to_string()));
                        }
                    }
                }
            }
            for (root, path) in refs {
                if root == "sys" {
                    if !SYS_VARIABLES.contains(&path.as_str()) {
                        return Err(node_error(
                            i,
                            &node.key,
                            format!("unknown system variable sys.{path}"),
                        ));
                    }
                    continue;
                }
                if path.is_empty() {
                    return Err(node_error(
                        i,
                        &node.key,
                        format!(
                            "the reference {{{{{root}}}}} needs a field: {{{{{root}.<field>}}}}"
                        ),
                    ));
                }
                let target = if root == "start" {
                    Some(start)
                } else {
                    index.get(root.as_str()).copied()
                };
                match target {
                    Some(t) if upstream.contains(&t) => {}
                    Some(_) => {
                        return Err(node_error(
                            i,
                            &node.key,
                            format!(
                                "{{{{{root}.{path}}}}} refers to a node that does not run before this one"
                            ),
                        ));
                    }
                    None => {
                        return Err(node_error(
                            i,
                            &node.key,
                            format!("{{{{{root}.{path}}}}} refers to no node"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn walk(from: usize, edges: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for &m in &edges[n] {
            if seen.insert(m) {
                stack.push(m);
            }
        }
    }
    seen
}

/// The strict ancestors of a node.
fn walk_up(node: usize, incoming: &[Vec<usize>]) -> HashSet<usize> {
    let mut all = walk(node, incoming);
    all.remove(&node);
    all
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn graph(value: Value) -> Graph {
        serde_json::from_value(value).unwrap()
    }

    fn chat_bot() -> Value {
        json!({
            "nodes": [
                { "key": "start", "type": "START", "config": { "inputs": [] } },
                { "key": "llm", "type": "LLM", "config": {
                    "providerId": "6f1c1c1e-0000-4000-8000-000000000001", "model": "m",
                    "prompt": "{{sys.query}}", "memory": true } },
                { "key": "answer", "type": "ANSWER", "config": { "answer": "{{llm.text}}" } }
            ],
            "connections": [
                { "source": "start", "target": "llm" },
                { "source": "llm", "target": "answer" }
            ]
        })
    }

    fn error_of(value: Value) -> (String, String) {
        match graph(value).validate().unwrap_err() {
            AppError::BadUserInput { field, message } => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chat_bot_is_valid() {
        graph(chat_bot()).validate().unwrap();
    }

    #[test]
    fn cycles_are_refused_naming_a_node_on_them() {
        let mut g = chat_bot();
        g["connections"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "source": "answer", "target": "llm" }));
        let (field, message) = error_of(g);
        assert!(message.contains("cycle"), "{message}");
        assert!(field.starts_with("graph.nodes["), "{field}");
    }

    #[test]
    fn exactly_one_start() {
        let mut g = chat_bot();
        g["nodes"][0]["type"] = json!("TEMPLATE");
        g["nodes"][0]["config"] = json!({ "template": "x" });
        assert!(error_of(g).1.contains("START"));
        let mut g = chat_bot();
        g["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "key": "s2", "type": "START", "config": {} }));
        assert!(error_of(g).1.contains("s2"));
    }

    #[test]
    fn unreachable_nodes_and_duplicate_keys() {
        let mut g = chat_bot();
        g["nodes"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "key": "lonely", "type": "TEMPLATE", "config": { "template": "x" } }));
        assert!(error_of(g).1.contains("lonely"));
        let mut g = chat_bot();
        g["nodes"][2]["key"] = json!("llm");
        assert!(error_of(g).1.contains("another node"));
    }

    #[test]
    fn references_must_point_upstream() {
        let mut g = chat_bot();
        g["nodes"][1]["config"]["prompt"] = json!("{{answer.answer}}");
        assert!(error_of(g).1.contains("does not run before"));
        let mut g = chat_bot();
        g["nodes"][2]["config"]["answer"] = json!("{{ghost.text}}");
        assert!(error_of(g).1.contains("refers to no node"));
        let mut g = chat_bot();
        g["nodes"][2]["config"]["answer"] = json!("{{sys.secret}}");
        assert!(error_of(g).1.contains("sys.secret"));
    }

    #[test]
    fn condition_branches_need_handles() {
        let g = json!({
            "nodes": [
                { "key": "start", "type": "START", "config": { "inputs": [{ "name": "n", "type": "number" }] } },
                { "key": "check", "type": "CONDITION", "config": { "logic": "and",
                    "conditions": [{ "variable": "start.n", "operator": "gt", "value": 3 }] } },
                { "key": "big", "type": "TEMPLATE", "config": { "template": "big {{start.n}}" } },
                { "key": "small", "type": "TEMPLATE", "config": { "template": "small" } }
            ],
            "connections": [
                { "source": "start", "target": "check" },
                { "source": "check", "target": "big", "sourceHandle": "true" },
                { "source": "check", "target": "small", "sourceHandle": "false" }
            ]
        });
        graph(g.clone()).validate().unwrap();
        let mut bad = g;
        bad["connections"][1]["sourceHandle"] = Value::Null;
        assert!(error_of(bad).1.contains("sourceHandle"));
    }

    #[test]
    fn config_shapes_are_checked() {
        let mut g = chat_bot();
        g["nodes"][1]["config"]["temperature"] = json!(7);
        assert!(error_of(g).1.contains("temperature"));
        let mut g = chat_bot();
        g["nodes"][1]["config"]
            .as_object_mut()
            .unwrap()
            .remove("prompt");
        let (field, message) = error_of(g);
        assert_eq!(field, "graph.nodes[1]");
        assert!(
            message.contains("\"llm\"") && message.contains("prompt"),
            "{message}"
        );
    }
}
