//! One run of a workflow version: nodes in dependency order, independent ones concurrently,
//! each under the node timeout; every node's result written to `node_execution_results` and
//! published as NODE_STARTED / NODE_FINISHED. The first failing node fails the run; a stop
//! drops whatever is in flight (closing a provider's connection mid-reply).

use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::config::EngineConfig;
use super::nodes::{self, NodeContext, NodeOutput};
use super::plan::{NodeState, Plan};
use super::reply::{Reply, Streamed};
use super::run_stream::RunStream;
use super::template::Vars;
use crate::app::App;
use crate::db::models::{ExecutionRecord, ToolCall};
use crate::db::schema::execution_records;
use crate::db::schema::node_execution_results as results;
use crate::error::AppResult;
use crate::llm::{ChatMessage, Usage};
use crate::realtime::events::{ExecutionEvent, ExecutionEventKind};
use crate::workflow::graph::{Graph, GraphNode, NodeType};

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

fn node_event(
    kind: ExecutionEventKind,
    record: &ExecutionRecord,
    node: &GraphNode,
    status: &str,
) -> ExecutionEvent {
    let mut event = ExecutionEvent::of_run(kind, record.clone());
    event.node_key = Some(node.key.clone());
    event.node_type = Some(node.node_type);
    event.status = status.to_string();
    event.error = None;
    event.outputs = None;
    event.elapsed_ms = None;
    event.total_tokens = None;
    event
}

/// Runs the graph until it ends, fails or `cancel` fires.
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
    let streamable = if reply.is_some() {
        streamable(&plan)
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
        events,
    };
    let mut run = Progress {
        app,
        record: execution,
        rows: vec![false; plan.nodes.len()],
        next_index: 0,
        running: Vec::new(),
        events,
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

    let mut running = FuturesUnordered::new();
    let (ctx_ref, plan_ref) = (&ctx, &plan);
    let launch = |index: usize, vars: Vars| async move {
        let started = Instant::now();
        let node = &plan_ref.nodes[index];
        let result =
            tokio::time::timeout(config.node_timeout, nodes::run(ctx_ref, index, node, &vars))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "the node took longer than {} s",
                        config.node_timeout.as_secs()
                    ))
                });
        (index, result, started.elapsed())
    };
    match plan.start() {
        Some(start) => {
            states[start] = NodeState::Running;
            run.started(start, &plan.nodes[start]).await;
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
        let Some((index, result, elapsed)) = next else {
            break;
        };
        let node = &plan.nodes[index];
        let elapsed_ms = elapsed.as_millis() as i64;
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
                    usage.prompt_tokens += u.prompt_tokens;
                    usage.completion_tokens += u.completion_tokens;
                    usage.total_tokens += u.total_tokens;
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
                run.record.total_tokens += tokens;
                run.record.total_steps += 1;
                run.finished(
                    node,
                    NodeEnd {
                        status: "SUCCEEDED",
                        inputs,
                        outputs: Some(outputs),
                        error: None,
                        elapsed_ms,
                        tokens,
                        console,
                    },
                )
                .await;
            }
            Err(error) => {
                states[index] = NodeState::Failed;
                run.record.total_steps += 1;
                run.finished(
                    node,
                    NodeEnd {
                        status: "FAILED",
                        inputs: None,
                        outputs: None,
                        error: Some(error.clone()),
                        elapsed_ms,
                        tokens: 0,
                        console: None,
                    },
                )
                .await;
                failure = Some(format!("node \"{}\": {error}", node.key));
                break;
            }
        }
        let settled = plan.settle(&mut states);
        for skipped in settled.skip {
            run.skipped(&plan.nodes[skipped]).await;
        }
        for next in settled.run {
            run.started(next, &plan.nodes[next]).await;
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
        if *state == NodeState::Running && run.rows[index] {
            run.finished(
                &plan.nodes[index],
                NodeEnd {
                    status: "STOPPED",
                    inputs: None,
                    outputs: None,
                    error: Some(interrupted.into()),
                    elapsed_ms: 0,
                    tokens: 0,
                    console: None,
                },
            )
            .await;
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
        steps: run.record.total_steps,
        retrieved,
        reply_seq,
        tool_calls,
    }
}

/// The run's record as nodes advance, and which nodes have a row.
struct Progress<'a> {
    app: &'a App,
    record: ExecutionRecord,
    rows: Vec<bool>,
    next_index: i32,
    /// The nodes running now, in the order they started: the last is the run's current node.
    running: Vec<(String, NodeType)>,
    /// Where its events go, in order.
    events: &'a RunStream,
}

impl Progress<'_> {
    async fn started(&mut self, index: usize, node: &GraphNode) {
        let sequence = self.next_index;
        self.next_index += 1;
        let written = self
            .insert(node, "RUNNING", sequence, Some(Utc::now()))
            .await;
        self.rows[index] = written;
        self.running.push((node.key.clone(), node.node_type));
        self.advance().await;
        self.publish(node_event(
            ExecutionEventKind::NodeStarted,
            &self.record,
            node,
            "RUNNING",
        ));
    }

    async fn skipped(&mut self, node: &GraphNode) {
        let sequence = self.next_index;
        self.next_index += 1;
        self.insert(node, "SKIPPED", sequence, None).await;
        self.publish(node_event(
            ExecutionEventKind::NodeFinished,
            &self.record,
            node,
            "SKIPPED",
        ));
    }

    async fn insert(
        &self,
        node: &GraphNode,
        status: &str,
        sequence: i32,
        started_at: Option<chrono::DateTime<Utc>>,
    ) -> bool {
        let written: AppResult<()> = async {
            let mut conn = self.app.engine.pool.get().await?;
            diesel::insert_into(results::table)
                .values((
                    results::workspace_id.eq(self.record.workspace_id),
                    results::execution_id.eq(self.record.id),
                    results::node_key.eq(&node.key),
                    results::node_type.eq(node.node_type.as_str()),
                    results::title.eq(&node.title),
                    results::status.eq(status),
                    results::sequence_index.eq(sequence),
                    results::started_at.eq(started_at),
                ))
                .execute(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        self.logged(written)
    }

    async fn finished(&mut self, node: &GraphNode, end: NodeEnd) {
        let written: AppResult<()> = async {
            let mut conn = self.app.engine.pool.get().await?;
            diesel::update(
                results::table
                    .filter(results::execution_id.eq(self.record.id))
                    .filter(results::node_key.eq(&node.key)),
            )
            .set((
                results::status.eq(end.status),
                results::inputs.eq(&end.inputs),
                results::outputs.eq(&end.outputs),
                results::error.eq(&end.error),
                results::elapsed_ms.eq(end.elapsed_ms),
                results::total_tokens.eq(end.tokens),
                results::finished_at.eq(Utc::now()),
                results::console.eq(end.console.as_ref().map(|lines| json!(lines))),
            ))
            .execute(&mut conn)
            .await?;
            Ok(())
        }
        .await;
        self.logged(written);
        self.running.retain(|(key, _)| *key != node.key);
        self.advance().await;
        let mut event = node_event(
            ExecutionEventKind::NodeFinished,
            &self.record,
            node,
            end.status,
        );
        event.inputs = end.inputs;
        event.outputs = end.outputs;
        event.error = end.error;
        event.elapsed_ms = Some(end.elapsed_ms);
        event.total_tokens = Some(end.tokens);
        self.publish(event);
    }

    /// Keeps the run's record at its steps, tokens and current node, and carries the stored
    /// row (a newer `updated_at`) in the events after, so `workspaceExecutions` shows each
    /// change once and a dashboard opened now reads the same progress.
    async fn advance(&mut self) {
        let current = self.running.last();
        self.record.current_node_key = current.map(|(key, _)| key.clone());
        self.record.current_node_type = current.map(|(_, kind)| kind.as_str().to_string());
        let stored: AppResult<Option<ExecutionRecord>> = async {
            let mut conn = self.app.engine.pool.get().await?;
            Ok(diesel::update(
                execution_records::table
                    .find(self.record.id)
                    .filter(execution_records::status.eq("RUNNING")),
            )
            .set((
                execution_records::total_steps.eq(self.record.total_steps),
                execution_records::total_tokens.eq(self.record.total_tokens),
                execution_records::current_node_key.eq(&self.record.current_node_key),
                execution_records::current_node_type.eq(&self.record.current_node_type),
            ))
            .returning(ExecutionRecord::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?)
        }
        .await;
        match stored {
            Ok(Some(row)) => self.record = row,
            // Ended elsewhere (stopped while this instance had it), or not written: the
            // event still says what changed.
            Ok(None) => self.record.updated_at = Utc::now(),
            Err(e) => {
                self.record.updated_at = Utc::now();
                tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a run's progress");
            }
        }
    }

    /// A failed write is logged; the run goes on (its end is written by the worker).
    fn logged(&self, written: AppResult<()>) -> bool {
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a node");
                false
            }
        }
    }

    /// Publishes a node event after those before it; the run does not wait for Redis.
    fn publish(&self, event: ExecutionEvent) {
        self.events.send(event);
    }
}

/// How a node ended.
struct NodeEnd {
    status: &'static str,
    inputs: Option<Value>,
    outputs: Option<Value>,
    error: Option<String>,
    elapsed_ms: i64,
    tokens: i32,
    console: Option<Vec<String>>,
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
