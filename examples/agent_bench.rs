//! The agent variant of `bench/chat`: CHATS concurrent end users each send a message to a
//! published chat application whose AGENT node calls an OpenAI-compatible server run by
//! this process (300 ms to its first token); its first turn calls the `add` tool of an MCP server also run here (the
//! rmcp server of the tests, answering at once), its second answers. The model server
//! notes when the first turn's last byte left and when the second turn's request arrived:
//! the difference is what a tool round trip adds (the assembled call, TOOL_CALL published,
//! the MCP call, TOOL_RESULT published, the next request); four bursts of CHATS. Then RUNS runs of a
//! START → CODE → END workflow with a trivial function, CONCURRENCY at a time: the CODE
//! node's start-to-result from its stored `startedAt` / `finishedAt`.
//!
//!   agent_bench CHATS RUNS CONCURRENCY
//!
//! Reads WEFT_URL (the server) and WEFT_PID (its process: the CPU time each part of the
//! machine spent per chat and per run is printed beside the latencies).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/api.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod api;

#[path = "../tests/api/harness/mcp_server.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
// test code: the benchmark calls one of its tools
mod mcp_server;

use api::{Api, Error, cpu_seconds, cpu_seconds_of, now_micros, percentile};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    // The model and the MCP server stand for other machines: they get threads of their
    // own, so their answers do not queue behind the benchmark's clients.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-servers")
        .enable_all()
        .build()?;
    let (model_url, mcp) = servers.block_on(async {
        let model_url = model_server().await?;
        Ok::<_, Error>((model_url, mcp_server::McpServer::start().await))
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(
        &model_url,
        &mcp.url,
        number(0, 50),
        number(1, 200),
        number(2, 10),
    ))
}

/// How long the model takes before it answers a turn.
const FIRST_TOKEN: Duration = Duration::from_millis(300);

/// The CODE node's function.
const CODE: &str = "function main(inputs) { return { doubled: inputs.n * 2 }; }";

/// Bursts of CHATS chats, one after the other (more samples for the tail).
const ROUNDS: u64 = 4;

/// When the turn that made each call ended (µs since the epoch), by call id.
static TURN_ENDS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// From a calling turn's end to the request carrying the tool's answer (µs).
static ROUND_TRIPS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn chunk(delta: Value) -> Bytes {
    let event =
        json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": delta }] });
    Bytes::from(format!("data: {event}\n\n"))
}

fn usage() -> Bytes {
    Bytes::from(
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\n",
    )
}

/// The model: asked, it calls `add` {a: 1, b: 2} (the arguments in two pieces); given the
/// tool's answer, it answers with it.
async fn model_server() -> Result<String, Error> {
    let chat = |body: String| async move {
        let body: Value = serde_json::from_str(&body).unwrap_or_default();
        let last = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .cloned()
            .unwrap_or_default();
        let mut pieces = Vec::new();
        let mut call_id = None;
        if last["role"] == "tool" {
            let arrived = now_micros();
            let id = last["tool_call_id"].as_str().unwrap_or("");
            let ended = TURN_ENDS
                .lock()
                .ok()
                .and_then(|mut ends| ends.get_or_insert_default().remove(id));
            if let (Some(ended), Ok(mut trips)) = (ended, ROUND_TRIPS.lock()) {
                trips.push(arrived.saturating_sub(ended));
            }
            pieces.push(chunk(json!({ "content": "The sum is " })));
            pieces.push(chunk(json!({ "content": last["content"] })));
        } else {
            let id = format!("call_{}", uuid::Uuid::new_v4().simple());
            pieces.push(chunk(json!({ "content": "Let me add. " })));
            pieces.push(chunk(json!({ "tool_calls": [{ "index": 0, "id": id, "type": "function",
                                        "function": { "name": "add", "arguments": "{\"a\": 1, " } }] })));
            pieces.push(chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "\"b\": 2}" } }] }),
            ));
            call_id = Some(id);
        }
        pieces.push(usage());
        // A model's time to its first token: the chats' requests and subscriptions are
        // done by the time their calls come back, as when people chat.
        tokio::time::sleep(FIRST_TOKEN).await;
        let done = futures_util::stream::once(async move {
            if let (Some(id), Ok(mut ends)) = (call_id, TURN_ENDS.lock()) {
                ends.get_or_insert_default().insert(id, now_micros());
            }
            Bytes::from_static(b"data: [DONE]\n\n")
        });
        let stream = futures_util::stream::iter(pieces)
            .chain(done)
            .map(Ok::<_, Infallible>);
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap_or_default()
    };
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    api::serve(router, "/v1").await
}

struct Setup {
    api: Api,
    token: String,
    application: String,
    key: String,
    code_workflow: String,
}

fn id_of(value: &Value) -> Result<String, Error> {
    Ok(value
        .as_str()
        .ok_or_else(|| format!("no id in {value}"))?
        .to_string())
}

/// A builder's agent application (START → AGENT offered the MCP server's `add` → ANSWER),
/// published with a key, and a START → CODE → END workflow.
async fn setup(model_url: &str, mcp_url: &str) -> Result<Setup, Error> {
    let api = Api::from_env();
    let (token, workspace) = api.builder("agent-bench").await?;
    let t = Some(token.as_str());
    let provider = api
        .call(
            "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace, "name": "Local", "providerType": "OPENAI_COMPATIBLE",
                           "baseUrl": model_url, "models": ["bench"], "defaultModel": "bench" } }),
            t,
        )
        .await?["createLlmProvider"]["id"]
        .clone();
    let mcp = api
        .call(
            "mutation($i: CreateMcpServerInput!) { createMcpServer(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace, "name": "Tools", "url": mcp_url,
                           "headers": { "Authorization": format!("Bearer {}", mcp_server::TOKEN) } } }),
            t,
        )
        .await?["createMcpServer"]["id"]
        .clone();
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": {} },
            { "key": "agent", "type": "AGENT", "config": { "providerId": provider, "model": "bench",
                "prompt": "{{sys.query}}", "tools": [{ "mcpServerId": mcp, "name": "add" }] } },
            { "key": "answer", "type": "ANSWER", "config": { "answer": "{{agent.text}}" } }
        ],
        "connections": [
            { "source": "start", "target": "agent" },
            { "source": "agent", "target": "answer" }
        ]
    });
    let create = "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }";
    let workflow = api
        .call(
            create,
            json!({ "i": { "workspaceId": workspace, "name": "Agent", "graph": graph } }),
            t,
        )
        .await?["createWorkflow"]["id"]
        .clone();
    let application = id_of(
        &api.call(
            "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace, "name": "Agent", "mode": "CHAT", "workflowId": workflow } }),
            t,
        )
        .await?["createApplication"]["id"],
    )?;
    api.call(
        "mutation($id: UUID!) { publishApplication(id: $id) { status } }",
        json!({ "id": application }),
        t,
    )
    .await?;
    let key = id_of(
        &api.call(
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "applicationId": application, "name": "bench" } }),
            t,
        )
        .await?["createApiKey"]["secret"],
    )?;
    let code = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [{ "name": "n", "type": "number" }] } },
            { "key": "code", "type": "CODE", "config": { "language": "JAVASCRIPT",
                "code": CODE,
                "inputs": { "n": "{{start.n}}" } } },
            { "key": "end", "type": "END", "config": { "outputs": { "doubled": "{{code.doubled}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "code" },
            { "source": "code", "target": "end" }
        ]
    });
    let code_workflow = id_of(
        &api.call(
            create,
            json!({ "i": { "workspaceId": workspace, "name": "Code", "graph": code } }),
            t,
        )
        .await?["createWorkflow"]["id"],
    )?;
    Ok(Setup {
        api,
        token,
        application,
        key,
        code_workflow,
    })
}

#[derive(Default)]
struct Chat {
    /// TOOL_CALL to TOOL_RESULT as the client saw them (µs).
    call_to_result_us: Option<u64>,
    answered: bool,
}

/// One end user: opens a socket, sends a message, reads the reply to its END.
async fn chat(setup: &Setup, n: u64) -> Result<Chat, Error> {
    let mut socket = api::socket(&setup.api.base, &setup.key).await?;
    let sent = setup
        .api
        .call(
            "mutation($i: SendMessageInput!) { sendMessage(input: $i) { assistantMessage { id } } }",
            json!({ "i": { "applicationId": setup.application, "query": "What is 1 + 2?",
                           "endUserId": format!("bench-user-{n}") } }),
            Some(&setup.key),
        )
        .await?;
    let message = id_of(&sent["sendMessage"]["assistantMessage"]["id"])?;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($m: UUID!) { messageStream(messageId: $m) { kind toolCall { result error } message { status content } } }",
        "variables": { "m": message } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    let mut got = Chat::default();
    let mut called_at = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(frame))) = next else {
            return Err("the stream broke or timed out".into());
        };
        let Message::Text(text) = frame else {
            continue;
        };
        let received = now_micros();
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] == "complete" {
            return Ok(got);
        }
        let event = &frame["payload"]["data"]["messageStream"];
        match event["kind"].as_str() {
            Some("TOOL_CALL") => called_at = Some(received),
            Some("TOOL_RESULT") => {
                if event["toolCall"]["error"] != Value::Null {
                    return Err(format!("the tool failed: {event}").into());
                }
                got.call_to_result_us = called_at.map(|at| received.saturating_sub(at));
            }
            Some("END") => {
                got.answered = event["message"]["status"] == "COMPLETED"
                    && event["message"]["content"]
                        .as_str()
                        .is_some_and(|c| c.ends_with("The sum is 3"));
            }
            _ => {}
        }
    }
}

/// One run of the CODE workflow; the node's start-to-result (µs).
async fn code_run(setup: &Setup, n: u64) -> Result<u64, Error> {
    let token = Some(setup.token.as_str());
    let run = setup
        .api
        .call(
            "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": setup.code_workflow, "inputs": { "n": n } } }),
            token,
        )
        .await?;
    let id = id_of(&run["runWorkflow"]["id"])?;
    // Waits for the run's end as a dashboard does, on executionEvents.
    let mut socket = api::socket(&setup.api.base, &setup.token).await?;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($e: UUID!) { executionEvents(executionId: $e) { kind } }",
        "variables": { "e": id } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(frame))) = next else {
            return Err("the run's events broke off or timed out".into());
        };
        if let Message::Text(text) = frame
            && (text.contains("EXECUTION_FINISHED") || text.contains("\"complete\""))
        {
            break;
        }
    }
    let found = setup
        .api
        .call(
            "query($id: UUID!) { execution(id: $id) { status outputs nodeResults { nodeKey startedAt finishedAt } } }",
            json!({ "id": id }),
            token,
        )
        .await?;
    let execution = &found["execution"];
    if execution["status"] != "SUCCEEDED"
        || (execution["outputs"]["doubled"] != json!((n * 2).to_string())
            && execution["outputs"]["doubled"] != json!(n * 2))
    {
        return Err(format!("the run did not double {n}: {execution}").into());
    }
    let node = execution["nodeResults"]
        .as_array()
        .and_then(|r| r.iter().find(|n| n["nodeKey"] == "code"))
        .ok_or("no code node result")?;
    let at = |field: &str| -> Result<chrono::DateTime<chrono::Utc>, Error> {
        Ok(node[field].as_str().ok_or("no time")?.parse()?)
    };
    let took = at("finishedAt")? - at("startedAt")?;
    Ok(took.num_microseconds().unwrap_or(0).max(0) as u64)
}

/// CPU seconds used so far by the server, this process, PostgreSQL and Redis, and when.
struct Cpu([f64; 4], Instant);

impl Cpu {
    fn now() -> Cpu {
        let server = std::env::var("WEFT_PID")
            .ok()
            .and_then(|pid| cpu_seconds(&pid).ok())
            .unwrap_or(0.0);
        Cpu(
            [
                server,
                cpu_seconds("self").unwrap_or(0.0),
                cpu_seconds_of("postgres"),
                cpu_seconds_of("redis-server"),
            ],
            Instant::now(),
        )
    }

    /// The CPU each part used since `self`, per one of `count` things done, in ms, and how
    /// busy they kept the machine's cores.
    fn report_since(&self, label: &str, count: u64) {
        let now = Cpu::now();
        let used = |i: usize| (now.0[i] - self.0[i]).max(0.0);
        let per = |i: usize| used(i) * 1000.0 / count.max(1) as f64;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let busy =
            (0..4).map(used).sum::<f64>() / (now.1 - self.1).as_secs_f64().max(1e-9) / cores as f64;
        println!(
            "{label}: CPU per one: Weft {:.2} ms, benchmark {:.2} ms, PostgreSQL {:.2} ms, Redis {:.2} ms; the {cores} cores {:.0}% busy with them",
            per(0),
            per(1),
            per(2),
            per(3),
            busy * 100.0
        );
    }
}

fn report(label: &str, mut values: Vec<u64>) {
    values.sort_unstable();
    println!(
        "{label}: n {}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        values.len(),
        percentile(&values, 0.5),
        percentile(&values, 0.9),
        percentile(&values, 0.99),
        percentile(&values, 1.0)
    );
}

async fn run(
    model_url: &str,
    mcp_url: &str,
    chats: u64,
    runs: u64,
    concurrency: u64,
) -> Result<(), Error> {
    let setup = setup(model_url, mcp_url).await?;
    // One chat first, so the MCP session and tool list are not part of every figure.
    chat(&setup, 0).await?;
    if let Ok(mut trips) = ROUND_TRIPS.lock() {
        trips.clear();
    }
    let started = Instant::now();
    let cpu = Cpu::now();
    let mut results: Vec<Result<Chat, Error>> = Vec::new();
    for round in 0..ROUNDS {
        let first = 1 + round * chats;
        results.extend(
            futures_util::stream::iter(first..first + chats)
                .map(|n| chat(&setup, n))
                .buffer_unordered(chats as usize)
                .collect::<Vec<_>>()
                .await,
        );
    }
    let wall = started.elapsed().as_secs_f64();
    cpu.report_since("chats", ROUNDS * chats);
    let (mut answered, mut failed, mut seen) = (0u64, 0u64, Vec::new());
    for result in results {
        match result {
            Ok(chat) => {
                answered += u64::from(chat.answered);
                seen.extend(chat.call_to_result_us);
            }
            Err(e) => {
                failed += 1;
                eprintln!("a chat failed: {e}");
            }
        }
    }
    println!(
        "agent: {ROUNDS} rounds of {chats} concurrent chats, one tool call each: {answered} answered, {failed} failed, in {wall:.2} s"
    );
    let trips = ROUND_TRIPS.lock().map(|t| t.clone()).unwrap_or_default();
    report(
        "tool round trip (model's calling turn ended -> next turn asked)",
        trips,
    );
    report("TOOL_CALL -> TOOL_RESULT at the client", seen);

    // A few runs to warm the sandbox's threads up, then the measured ones.
    for n in 0..5 {
        code_run(&setup, n).await?;
    }
    let cpu = Cpu::now();
    let took: Vec<Result<u64, Error>> = futures_util::stream::iter(0..runs)
        .map(|n| code_run(&setup, n))
        .buffer_unordered(concurrency as usize)
        .collect()
        .await;
    let mut failed = 0;
    let mut code = Vec::new();
    for result in took {
        match result {
            Ok(us) => code.push(us),
            Err(e) => {
                failed += 1;
                eprintln!("a code run failed: {e}");
            }
        }
    }
    println!("code: {runs} runs, {concurrency} at a time, {failed} failed");
    cpu.report_since("code runs", runs);
    report(
        &format!("CODE node start-to-result, {concurrency} runs at a time (trivial main)"),
        code,
    );

    let mut alone = Vec::new();
    for n in 0..runs.min(100) {
        alone.push(code_run(&setup, n).await?);
    }
    report("CODE node start-to-result, one run at a time", alone);
    report(
        "the sandbox alone (this process, one thread)",
        sandbox_alone(1000),
    );
    Ok(())
}

/// `calls` calls of the benchmark's CODE function straight into the sandbox (µs each).
fn sandbox_alone(calls: u64) -> Vec<u64> {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let limits = weft::sandbox::Limits {
        time: Duration::from_secs(5),
        memory_bytes: 64 * 1024 * 1024,
    };
    (0..calls)
        .filter_map(|n| {
            let started = Instant::now();
            weft::sandbox::run_main(CODE, &json!({ "n": n }), limits, &cancel).ok()?;
            Some(started.elapsed().as_micros() as u64)
        })
        .collect()
}
