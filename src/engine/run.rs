//! One run of a workflow version: nodes in dependency order, independent ones concurrently,
//! each under the node timeout; every node's start and result handed to the run's journal,
//! which writes `node_execution_results` and publishes NODE_STARTED / NODE_FINISHED without
//! holding the run up. The first failing node fails the run; a stop drops whatever is in
//! flight (closing a provider's connection mid-reply).

use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::config::EngineConfig;
use super::journal::{self, Journal, NodeEnd};
use super::nodes::{self, NodeContext, NodeOutput};
use super::plan::{NodeState, Plan};
use super::reply::{Reply, Streamed};
use super::run_stream::RunStream;
use super::template::Vars;
use crate::app::App;
use crate::db::models::{ExecutionRecord, ToolCall};
use crate::llm::{ChatMessage, Usage};
use crate::workflow::graph::{Graph, NodeType};

/// What a run starts from.
pub struct RunInput {
    /// The execution, already RUNNING.
    pub execution: ExecutionRecord,
    pub graph: Graph,
    /// `sys.*`.
    pub sys: Value,
    /// `start.*`: the run's inputs.
    pub start: Value,
    pub history: Vec<ChatMessage>,
    /// The message the reply streams into (chat).
    pub reply: Option<Reply>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// SUCCEEDED, FAILED or STOPPED.
    pub status: &'static str,
    pub outputs: Value,
    pub error: Option<String>,
    /// The reply: the ANSWER nodes' text, or what had streamed when the run stopped or failed.
    pub answer: String,
    pub usage: Usage,
    pub model: Option<(String, String)>,
    pub steps: i32,
    /// Segments KNOWLEDGE_RETRIEVAL nodes found: (node key, the node's `segments` entry).
    pub retrieved: Vec<(String, Value)>,
    /// The last `seq` the reply's stream gave out here (0: none known): its END goes after.
    pub reply_seq: i64,
    /// The function calls the reply carried (TOOL_CALL / TOOL_RESULT), in order.
    pub tool_calls: Vec<ToolCall>,
}

impl Outcome {
    /// Stopped before it started.
    pub fn stopped() -> Outcome {
        Outcome {
            status: "STOPPED",
            ..Outcome::failed("stopped")
        }
    }

    pub fn failed(error: impl Into<String>) -> Outcome {
        Outcome {
            status: "FAILED",
            outputs: json!({}),
            error: Some(error.into()),
            answer: String::new(),
            usage: Usage::default(),
            model: None,
            steps: 0,
            retrieved: Vec::new(),
            reply_seq: 0,
            tool_calls: Vec::new(),
        }
    }
}

/// LLM and AGENT nodes whose tokens may stream into the reply: the first `{{X.text}}` of an
/// ANSWER template, when what comes before it in the template is known by the time X runs.
fn streamable(plan: &Plan) -> Vec<(usize, String)> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for answer in plan
        .nodes
        .iter()
        .filter(|n| n.node_type == NodeType::Answer)
    {
        let template = answer
            .config
            .get("answer")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut offset = 0;
        let mut before: Vec<String> = Vec::new();
        while let Some(open) = template[offset..].find("{{") {
            let start = offset + open;
            let Some(close) = template[start..].find("}}") else {
                break;
            };
            let inner = template[start + 2..start + close].trim();
            let root = inner.split('.').next().unwrap_or("").to_string();
            let llm = plan.index_of(&root).filter(|&i| {
                matches!(plan.nodes[i].node_type, NodeType::Llm | NodeType::Agent)
                    && inner == format!("{root}.text")
            });
            if let Some(llm) = llm {
                let known = before.iter().all(|r| {
                    r == "sys"
                        || r == "start"
                        || plan.index_of(r).is_some_and(|i| plan.is_upstream(i, llm))
                });
                if known && !found.iter().any(|(n, _)| *n == llm) {
                    found.push((llm, template[..start].to_string()));
                }
                break;
            }
            before.push(root);
            offset = start + close + 2;
        }
    }
    found
}

/// Runs the graph until it ends, fails or `cancel` fires, beside the journal that writes
/// and publishes what it does.
pub async fn execute(
    app: &App,
    config: &EngineConfig,
    http: reqwest::Client,
    input: RunInput,
    events: &RunStream,
    cancel: CancellationToken,
) -> Outcome {
    let RunInput {
        execution,
        graph,
        sys,
        start,
        history,
        reply,
    } = input;
    let plan = Plan::new(graph);
    let (journal, entries) = Journal::new();
    let keeper = journal::keep(app, execution.clone(), &plan.nodes, events, entries);
    let walk = async {
        let outcome = walk(
            app, config, http, &plan, &execution, &journal, sys, start, history, reply, cancel,
        )
        .await;
        journal.close();
        outcome
    };
    tokio::join!(keeper, walk).1
}

/// The graph's nodes in dependency order, entries to the journal as they start and end.
#[allow(clippy::too_many_arguments)] // the parts of a RunInput and where the run reports
async fn walk(
    app: &App,
    config: &EngineConfig,
    http: reqwest::Client,
    plan: &Plan,
    execution: &ExecutionRecord,
    journal: &Journal,
    sys: Value,
    start: Value,
    history: Vec<ChatMessage>,
    reply: Option<Reply>,
    cancel: CancellationToken,
) -> Outcome {
    let streamable = if reply.is_some() {
        streamable(plan)
    } else {
        Vec::new()
    };
    let streaming = Mutex::new(None);
    let ctx = NodeContext {
        app,
        config,
        http,
        workspace_id: execution.workspace_id,
        history: &history,
        reply: reply.as_ref(),
        streamable: &streamable,
        streaming: &streaming,
        journal,
    };
    let mut vars = Vars::new(sys, start);
    let mut states = vec![NodeState::Waiting; plan.nodes.len()];
    let mut answers: Vec<String> = Vec::new();
    let mut end_outputs = Map::new();
    let mut usage = Usage::default();
    let mut model = None;
    let mut retrieved: Vec<(String, Value)> = Vec::new();
    let mut failure: Option<String> = None;
    let mut stopped = false;
    let mut steps = execution.total_steps;

    let mut running = FuturesUnordered::new();
    let ctx_ref = &ctx;
    let launch = |index: usize, vars: Vars| {
        journal.started(index, Utc::now());
        async move {
            let started = Instant::now();
            let node = &plan.nodes[index];
            let result =
                tokio::time::timeout(config.node_timeout, nodes::run(ctx_ref, index, node, &vars))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "the node took longer than {} s",
                            config.node_timeout.as_secs()
                        ))
                    });
            (index, result, started.elapsed(), Utc::now())
        }
    };
    match plan.start() {
        Some(start) => {
            states[start] = NodeState::Running;
            running.push(launch(start, vars.clone()));
        }
        None => failure = Some("the graph has no START node".into()),
    }
    while failure.is_none() {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => { stopped = true; break; }
            next = running.next() => next,
        };
        let Some((index, result, elapsed, finished_at)) = next else {
            break;
        };
        let node = &plan.nodes[index];
        let elapsed_ms = elapsed.as_millis() as i64;
        steps += 1;
        match result {
            Ok(output) => {
                let NodeOutput {
                    inputs,
                    outputs,
                    branch,
                    usage: used,
                    model: used_model,
                    console,
                } = output;
                states[index] = NodeState::Done { branch };
                let tokens = used.map_or(0, |u| u.total_tokens);
                if let Some(u) = used {
                    usage += u;
                }
                if model.is_none() {
                    model = used_model;
                }
                match node.node_type {
                    NodeType::Answer => {
                        answers.push(outputs["answer"].as_str().unwrap_or_default().to_string());
                        if let Some(reply) = &reply {
                            reply.answer(answers.concat());
                        }
                    }
                    NodeType::End => {
                        if let Value::Object(map) = &outputs {
                            end_outputs.extend(map.clone());
                        }
                    }
                    NodeType::KnowledgeRetrieval => {
                        if let Some(Value::Array(found)) = outputs.get("segments") {
                            retrieved.extend(found.iter().map(|s| (node.key.clone(), s.clone())));
                        }
                    }
                    _ => {}
                }
                vars.set(&node.key, outputs.clone());
                journal.finished(
                    index,
                    NodeEnd {
                        status: "SUCCEEDED",
                        inputs,
                        outputs: Some(outputs),
                        error: None,
                        elapsed_ms,
                        finished_at,
                        tokens,
                        console,
                    },
                    true,
                );
            }
            Err(error) => {
                states[index] = NodeState::Failed;
                journal.finished(
                    index,
                    NodeEnd {
                        status: "FAILED",
                        inputs: None,
                        outputs: None,
                        error: Some(error.clone()),
                        elapsed_ms,
                        finished_at,
                        tokens: 0,
                        console: None,
                    },
                    true,
                );
                failure = Some(format!("node \"{}\": {error}", node.key));
                break;
            }
        }
        let settled = plan.settle(&mut states);
        for skipped in settled.skip {
            journal.skipped(skipped);
        }
        for next in settled.run {
            running.push(launch(next, vars.clone()));
        }
    }
    // Whatever is still in flight stops here: dropping it closes its connections.
    drop(running);
    let interrupted = if stopped {
        "the run was stopped"
    } else {
        "the run failed at another node"
    };
    for (index, state) in states.iter().enumerate() {
        if *state == NodeState::Running {
            journal.finished(
                index,
                NodeEnd {
                    status: "STOPPED",
                    inputs: None,
                    outputs: None,
                    error: Some(interrupted.into()),
                    elapsed_ms: 0,
                    finished_at: Utc::now(),
                    tokens: 0,
                    console: None,
                },
                false,
            );
        }
    }
    let streamed = match reply {
        Some(reply) => reply.finish().await,
        None => Streamed::default(),
    };
    let reply_seq = streamed.seq;
    let mut tool_calls = streamed.tool_calls;
    // A call cut off by the end of the run has no result: say why.
    for call in tool_calls
        .iter_mut()
        .filter(|c| c.result.is_none() && c.error.is_none())
    {
        call.error = Some(interrupted.to_string());
    }
    let (status, answer) = if stopped {
        ("STOPPED", streamed.text)
    } else if failure.is_some() {
        ("FAILED", streamed.text)
    } else {
        ("SUCCEEDED", answers.concat())
    };
    let mut outputs = end_outputs;
    if !answers.is_empty() && !outputs.contains_key("answer") {
        outputs.insert("answer".into(), Value::String(answers.concat()));
    }
    Outcome {
        status,
        outputs: Value::Object(outputs),
        error: failure.or_else(|| stopped.then(|| "stopped".to_string())),
        answer,
        usage,
        model,
        steps,
        retrieved,
        reply_seq,
        tool_calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_llm_reference_of_an_answer_streams() {
        let graph: Graph = serde_json::from_value(json!({
            "nodes": [
                { "key": "start", "type": "START", "config": {} },
                { "key": "llm", "type": "LLM", "config": {} },
                { "key": "other", "type": "LLM", "config": {} },
                { "key": "answer", "type": "ANSWER", "config": { "answer": "Hi {{sys.query}}: {{ llm.text }} and {{other.text}}" } }
            ],
            "connections": [
                { "source": "start", "target": "llm" },
                { "source": "start", "target": "other" },
                { "source": "llm", "target": "answer" },
                { "source": "other", "target": "answer" }
            ]
        }))
        .unwrap();
        let plan = Plan::new(graph);
        assert_eq!(
            streamable(&plan),
            vec![(1, "Hi {{sys.query}}: ".to_string())]
        );
    }
}
