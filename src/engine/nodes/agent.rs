//! AGENT nodes: a model offered the workspace's tools (OpenAI function calling). Each turn
//! streams its text like an LLM node's; the functions it calls are made concurrently, their
//! results given back, until it answers; after `maxIterations` turns that called tools, one
//! more turn may only answer (`tool_choice: "none"`). When an ANSWER streams the node, each
//! call and its result go into the reply as TOOL_CALL / TOOL_RESULT; each turn is a
//! NODE_PROGRESS of the run.

use serde_json::{Value, json};

use super::llm::{self, IntoReply, Unfinished, usage_json};
use super::{NodeContext, NodeOutput};
use crate::db::models::ToolCall;
use crate::engine::reply::Reply;
use crate::engine::template::Vars;
use crate::llm::{ChatMessage, ChatRequest, ToolCallRequest, ToolSpec, Usage};
use crate::tools::{self, ReadyTool, ToolRef, agent_tools, function_name};
use crate::workflow::graph::{GraphNode, MAX_AGENT_ITERATIONS};

/// Turns when the node does not say.
pub const DEFAULT_ITERATIONS: u64 = 5;

pub async fn run(
    ctx: &NodeContext<'_>,
    index: usize,
    node: &GraphNode,
    vars: &Vars,
) -> Result<NodeOutput, String> {
    let config = &node.config;
    let references = agent_tools(config)?;
    let iterations = config
        .get("maxIterations")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_ITERATIONS)
        .clamp(1, MAX_AGENT_ITERATIONS);
    let (system, prompt, mut messages) = llm::conversation(ctx, config, vars)?;
    let resolved = llm::model(ctx, config).await?;
    let offered = prepare(ctx, &references).await?;
    let specs: Vec<ToolSpec> = offered
        .iter()
        .map(|(name, tool)| ToolSpec {
            name: name.clone(),
            description: tool.description.clone(),
            parameters: tool.input_schema.clone(),
        })
        .collect();
    let mut into_reply = IntoReply::new(ctx, index, vars);
    let mut text = String::new();
    let mut usage = Usage::default();
    let mut made: Vec<ToolCall> = Vec::new();
    let mut turns = 0;
    // When the last calling turn ended, and how long its tools then took.
    let mut calls_timed: Option<(std::time::Instant, std::time::Duration)> = None;
    for iteration in 1..=iterations + 1 {
        turns = iteration;
        let request = ChatRequest {
            model: resolved.model.clone(),
            messages: messages.clone(),
            temperature: config.get("temperature").and_then(Value::as_f64),
            max_tokens: config
                .get("maxTokens")
                .and_then(Value::as_u64)
                .map(|n| n.min(u64::from(u32::MAX)) as u32),
            tools: specs.clone(),
            answer_only: iteration > iterations,
        };
        if let Some((turn_ended, tools)) = calls_timed.take() {
            tracing::debug!(
                tools_us = tools.as_micros() as u64,
                round_trip_us = turn_ended.elapsed().as_micros() as u64,
                "an agent's tools answered"
            );
        }
        let mut said = String::new();
        let mut unfinished = Unfinished::new(ctx, &resolved, &request);
        let turn = resolved
            .client
            .turn(&request, |piece| {
                if said.is_empty() && !text.is_empty() {
                    // Each turn's words apart from the last turn's.
                    text.push_str("\n\n");
                    into_reply.text("\n\n");
                }
                said.push_str(piece);
                text.push_str(piece);
                unfinished.completion_chars += piece.chars().count();
                into_reply.text(piece);
            })
            .await;
        unfinished.done = true;
        let turn_ended = std::time::Instant::now();
        let turn = turn.map_err(|e| e.to_string())?;
        usage += turn.usage;
        if turn.tool_calls.is_empty() {
            // The answer's tokens are counted before the node ends.
            llm::record_usage(ctx, &resolved, turn.usage).await;
            ctx.journal.progress(
                index,
                json!({ "iteration": iteration, "toolCalls": [], "usage": usage_json(turn.usage) }),
            );
            break;
        }
        if request.answer_only {
            llm::record_usage(ctx, &resolved, turn.usage).await;
            return Err(format!(
                "the model still called tools after {iterations} turns of calls (config.maxIterations)"
            ));
        }
        let reply = into_reply.reply();
        let calls: Vec<ToolCall> = turn.tool_calls.iter().map(recorded).collect();
        if let Some(reply) = reply {
            calls.iter().for_each(|c| reply.tool_call(c.clone()));
        }
        // A calling turn's tokens are counted beside the run: the tools do not wait for
        // them to be written.
        ctx.app
            .engine
            .usage
            .count(resolved.provider_id, &resolved.model, turn.usage);
        let done = futures_util::future::join_all(
            calls
                .into_iter()
                .map(|call| make_call(ctx, &offered, call, reply)),
        )
        .await;
        calls_timed = Some((turn_ended, turn_ended.elapsed()));
        let (done, answers): (Vec<ToolCall>, Vec<String>) = done.into_iter().unzip();
        messages.push(ChatMessage::calling(said, turn.tool_calls));
        messages.extend(
            done.iter()
                .zip(answers)
                .map(|(call, answer)| ChatMessage::tool_answer(&call.id, answer)),
        );
        ctx.journal.progress(
            index,
            json!({ "iteration": iteration, "toolCalls": done, "usage": usage_json(turn.usage) }),
        );
        made.extend(done);
    }
    Ok(NodeOutput {
        inputs: Some(json!({
            "model": resolved.model,
            "system": system,
            "prompt": prompt,
            "tools": specs.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        })),
        outputs: json!({
            "text": text,
            "toolCalls": made,
            "iterations": turns,
            "usage": usage_json(usage),
        }),
        usage: Some(usage),
        model: Some((resolved.provider_name, resolved.model)),
        ..NodeOutput::default()
    })
}

/// Finds every tool the node offers, under its function name.
async fn prepare(
    ctx: &NodeContext<'_>,
    references: &[ToolRef],
) -> Result<Vec<(String, ReadyTool)>, String> {
    if references.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = ctx.app.engine.pool.get().await.map_err(|e| {
        tracing::error!(error = %e, "no database connection for an agent node");
        "the database is unavailable".to_string()
    })?;
    let mut offered = Vec::with_capacity(references.len());
    for reference in references {
        let tool = tools::prepare(
            ctx.app,
            &mut conn,
            ctx.workspace_id,
            reference,
            ctx.config.node_timeout,
        )
        .await?;
        offered.push((function_name(reference.name()), tool));
    }
    Ok(offered)
}

/// A call as the stream and the message keep it: its arguments as JSON, or as the text
/// the model wrote when that is not JSON.
fn recorded(call: &ToolCallRequest) -> ToolCall {
    let arguments = if call.arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&call.arguments)
            .unwrap_or_else(|_| Value::String(call.arguments.clone()))
    };
    ToolCall {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments,
        result: None,
        error: None,
    }
}

/// Makes one call and tells the reply: the call with its result or error filled in, and
/// what the model is told it gave (the tool's text when it has one, else its result as
/// JSON, or the error).
async fn make_call(
    ctx: &NodeContext<'_>,
    offered: &[(String, ReadyTool)],
    mut call: ToolCall,
    reply: Option<&Reply>,
) -> (ToolCall, String) {
    let outcome = match offered.iter().find(|(name, _)| *name == call.name) {
        None => Err(format!("no tool named {} is offered", call.name)),
        Some(_) if !call.arguments.is_object() => {
            Err("the arguments are not a JSON object".to_string())
        }
        Some((_, tool)) => {
            tools::call(
                ctx.app,
                tool,
                call.arguments.clone(),
                ctx.config.node_timeout,
            )
            .await
        }
    };
    let answer = match outcome {
        Ok(output) => {
            let answer = if output.text.is_empty() {
                output.result.to_string()
            } else {
                output.text.clone()
            };
            call.result = Some(if output.result.is_null() {
                Value::String(output.text)
            } else {
                output.result
            });
            answer
        }
        Err(error) => {
            let answer = format!("error: {error}");
            call.error = Some(error);
            answer
        }
    };
    if let Some(reply) = reply {
        reply.tool_result(call.clone());
    }
    (call, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_that_are_not_json_are_kept_as_written() {
        let call = ToolCallRequest {
            id: "c1".into(),
            name: "add".into(),
            arguments: "{\"a\": 1".into(),
        };
        assert_eq!(recorded(&call).arguments, json!("{\"a\": 1"));
        let call = ToolCallRequest {
            arguments: String::new(),
            ..call
        };
        assert_eq!(recorded(&call).arguments, json!({}));
    }
}
