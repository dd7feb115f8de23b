//! What each type of node does, given the variables of the run so far. A node returns its
//! outputs (and, for a CONDITION, the branch taken) or an error message.

use serde_json::{Value, json};
use std::sync::Mutex;
use uuid::Uuid;

mod agent;
mod code;
mod knowledge;
mod llm;
mod tool;

use crate::app::App;
use crate::engine::config::EngineConfig;
use crate::engine::journal::Journal;
use crate::engine::reply::Reply;
use crate::engine::template::Vars;
use crate::engine::{condition, http_node};
use crate::llm::ChatMessage;
use crate::workflow::graph::{GraphNode, NodeType};

/// What a finished node produced.
#[derive(Debug, Default)]
pub struct NodeOutput {
    pub inputs: Option<Value>,
    pub outputs: Value,
    pub branch: Option<bool>,
    pub usage: Option<crate::llm::Usage>,
    /// The provider's name and the model, for LLM nodes.
    pub model: Option<(String, String)>,
    /// What a CODE node wrote to its console.
    pub console: Option<Vec<String>>,
}

/// What every node of one run shares.
pub struct NodeContext<'a> {
    pub app: &'a App,
    pub config: &'a EngineConfig,
    pub http: reqwest::Client,
    pub workspace_id: Uuid,
    /// The conversation's earlier turns, for LLM nodes with `memory`.
    pub history: &'a [ChatMessage],
    pub reply: Option<&'a Reply>,
    /// LLM and AGENT nodes whose tokens may stream into the reply, with the ANSWER text before them.
    pub streamable: &'a [(usize, String)],
    /// The LLM or AGENT node streaming into the reply (one per run).
    pub streaming: &'a Mutex<Option<usize>>,
    /// The run's journal, for a node's progress.
    pub journal: &'a Journal,
}

pub(crate) fn text<'v>(config: &'v Value, field: &str) -> &'v str {
    config.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Runs node `index` with the variables it can see.
pub async fn run(
    ctx: &NodeContext<'_>,
    index: usize,
    node: &GraphNode,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    let config = &node.config;
    match node.node_type {
        NodeType::Start => Ok(NodeOutput {
            outputs: vars.lookup("start").cloned().unwrap_or_else(|| json!({})),
            ..NodeOutput::default()
        }),
        NodeType::Template => {
            let output = vars.render(text(config, "template"))?;
            Ok(NodeOutput {
                outputs: json!({ "output": output }),
                ..NodeOutput::default()
            })
        }
        NodeType::Answer => {
            let answer = vars.render(text(config, "answer"))?;
            Ok(NodeOutput {
                outputs: json!({ "answer": answer }),
                ..NodeOutput::default()
            })
        }
        NodeType::End => {
            let outputs = match config.get("outputs") {
                Some(Value::Object(map)) => {
                    let mut out = serde_json::Map::new();
                    for (name, template) in map {
                        out.insert(
                            name.clone(),
                            Value::String(vars.render(template.as_str().unwrap_or(""))?),
                        );
                    }
                    Value::Object(out)
                }
                _ => json!({}),
            };
            Ok(NodeOutput {
                outputs,
                ..NodeOutput::default()
            })
        }
        NodeType::Condition => {
            let result = condition::evaluate(config, vars)?;
            Ok(NodeOutput {
                outputs: json!({ "result": result }),
                branch: Some(result),
                ..NodeOutput::default()
            })
        }
        NodeType::HttpRequest => {
            let outputs = http_node::run(
                config,
                vars,
                &ctx.app.config.outbound,
                ctx.config.node_timeout,
            )
            .await?;
            Ok(NodeOutput {
                inputs: Some(json!({ "url": vars.render(text(config, "url"))? })),
                outputs,
                ..NodeOutput::default()
            })
        }
        NodeType::Llm => llm::run(ctx, index, config, vars).await,
        NodeType::Agent => agent::run(ctx, index, node, vars).await,
        NodeType::Code => code::run(ctx, config, vars).await,
        NodeType::Tool => tool::run(ctx, config, vars).await,
        NodeType::KnowledgeRetrieval => knowledge::run(ctx, config, vars).await,
    }
}
