//! AGENT nodes: a model calling the workspace's tools (OpenAI function calling, streamed
//! by the test's OpenAI-compatible server; tools of the test's MCP server), each call and
//! its result streamed as TOOL_CALL / TOOL_RESULT in order with the text, over WebSocket
//! and SSE, resumable by seq, kept with the message; iterations on executionEvents; a stop
//! during a slow call; tool errors; maxIterations; graph checks.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, Tenant, create_organization, data, error_code, register};
use crate::harness::chat::{
    application_with_key, from_official_template, provider, text_of, workflow,
};
use crate::harness::live::{Sse, Ws, seqs};
use crate::harness::mcp_server::McpServer;
use crate::harness::model_server::{KEY, ModelServer};
use crate::tools::mcp_server;

const WS: &str = "graphql-transport-ws";
const SEND: &str = "mutation($i: SendMessageInput!) { sendMessage(input: $i) {
    assistantMessage { id } execution { id } } }";
const STREAM: &str =
    "subscription($id: UUID!, $after: Int) { messageStream(messageId: $id, after: $after) {
    seq kind delta text toolCall { id name arguments result error }
    message { status content totalTokens toolCalls { id name arguments result error } } } }";
const EXECUTION_EVENTS: &str = "subscription($id: UUID!) { executionEvents(executionId: $id) {
    seq kind nodeKey nodeType status outputs } }";
const MESSAGE: &str = "query($id: UUID!) { message(id: $id) { status content totalTokens
    toolCalls { id name arguments result error } } }";

/// An application whose workflow is START → AGENT (offered `tools`) → ANSWER.
struct AgentApp {
    owner: Account,
    tenant: Tenant,
    mcp_server: String,
    application: String,
    key: String,
}

fn agent_graph(provider: &str, model: &str, tools: Value, max_iterations: Option<u64>) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": {} },
            { "key": "agent", "type": "AGENT", "config": {
                "providerId": provider, "model": model, "systemPrompt": "Use the tools.",
                "prompt": "{{sys.query}}", "tools": tools, "maxIterations": max_iterations } },
            { "key": "answer", "type": "ANSWER", "config": { "answer": "{{agent.text}}" } }
        ],
        "connections": [
            { "source": "start", "target": "agent" },
            { "source": "agent", "target": "answer" }
        ]
    })
}

async fn agent_app(
    server: &TestServer,
    models: &ModelServer,
    mcp: &McpServer,
    model: &str,
    tool_names: &[&str],
    max_iterations: Option<u64>,
) -> AgentApp {
    let owner = register(server, "owner@example.com").await;
    let tenant = create_organization(server, &owner, "Acme").await;
    let provider = provider(server, &owner, &tenant, &models.base_url, KEY, None).await;
    let mcp_server = mcp_server(server, &owner, &tenant, mcp).await;
    let tools: Vec<Value> = tool_names
        .iter()
        .map(|name| json!({ "mcpServerId": mcp_server, "name": name }))
        .collect();
    let flow = workflow(
        server,
        &owner,
        &tenant,
        agent_graph(&provider, model, json!(tools), max_iterations),
    )
    .await;
    let (application, key) =
        application_with_key(server, &owner, tenant.workspace_id, &flow, "CHAT").await;
    AgentApp {
        owner,
        tenant,
        mcp_server,
        application,
        key,
    }
}

/// Sends `query` as an end user; (the reply's id, the execution's id).
async fn ask(server: &TestServer, app: &AgentApp, query: &str) -> (String, String) {
    let sent = data(
        server
            .graphql_as(
                Some(&app.key),
                SEND,
                json!({ "i": { "applicationId": app.application, "query": query, "endUserId": "user-1" } }),
            )
            .await,
    )["sendMessage"]
        .clone();
    (
        sent["assistantMessage"]["id"].as_str().unwrap().to_string(),
        sent["execution"]["id"].as_str().unwrap().to_string(),
    )
}

fn event(payload: &Value) -> &Value {
    &payload["data"]["messageStream"]
}

/// The `toolCall` of each event of `kind` (TOOL_CALL or TOOL_RESULT), in order.
fn tool_events<'a>(payloads: &'a [Value], kind: &str) -> Vec<&'a Value> {
    payloads
        .iter()
        .map(event)
        .filter(|e| e["kind"] == kind)
        .map(|e| &e["toolCall"])
        .collect()
}

fn kinds(payloads: &[Value]) -> Vec<String> {
    payloads
        .iter()
        .map(|p| event(p)["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn stream(server: &TestServer, key: &str, reply: &str, after: i64) -> Vec<Value> {
    let mut ws = Ws::connect(server, WS, Some(key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply, "after": after }))
        .await;
    ws.until_complete("1").await
}

#[tokio::test]
async fn an_agent_reply_streams_each_tool_call_in_order_and_keeps_them_with_the_message() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent", &["add", "shout"], None).await;
    let (reply, execution) = ask(
        &server,
        &app,
        r#"call: add {"a": 2, "b": 3} | shout {"text": "hi there"}"#,
    )
    .await;

    // Live over WebSocket.
    let live = stream(&server, &app.key, &reply, 0).await;
    let seen = kinds(&live);
    assert_eq!(seen.first().map(String::as_str), Some("DELTA"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("END"), "{seen:?}");
    let position = |kind: &str| seen.iter().position(|k| k == kind).unwrap();
    let last_position = |kind: &str| seen.iter().rposition(|k| k == kind).unwrap();
    // Text said before the calls, both calls, both results, then the answer's text.
    assert_eq!(
        seen.iter().filter(|k| *k == "TOOL_CALL").count(),
        2,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|k| *k == "TOOL_RESULT").count(),
        2,
        "{seen:?}"
    );
    assert!(
        last_position("TOOL_CALL") < position("TOOL_RESULT"),
        "{seen:?}"
    );
    let answer_delta = live
        .iter()
        .position(|p| {
            event(p)["delta"]
                .as_str()
                .is_some_and(|d| d.contains("Tools said"))
        })
        .expect("the answer's text streams");
    assert!(last_position("TOOL_RESULT") < answer_delta, "{seen:?}");
    assert_eq!(event(&live[0])["delta"], "Let me look. ");
    assert_eq!(
        seqs(&live, "messageStream"),
        (1..=live.len() as i64).collect::<Vec<_>>()
    );

    let calls: Vec<&Value> = tool_events(&live, "TOOL_CALL");
    assert_eq!(calls[0]["name"], "add");
    assert_eq!(calls[0]["arguments"], json!({ "a": 2, "b": 3 }));
    assert_eq!(calls[0]["result"], Value::Null);
    assert_eq!(calls[1]["name"], "shout");
    assert_eq!(calls[1]["arguments"], json!({ "text": "hi there" }));
    let results: Vec<&Value> = tool_events(&live, "TOOL_RESULT");
    let result_of = |id: &Value| {
        results
            .iter()
            .find(|r| r["id"] == *id)
            .expect("a result for each call")
    };
    assert_eq!(result_of(&calls[0]["id"])["result"], json!({ "sum": 5.0 }));
    assert_eq!(result_of(&calls[1]["id"])["error"], Value::Null);

    let text = text_of(&live);
    assert_eq!(text, "Let me look. \n\nTools said: 5; HI THERE");
    let end = event(live.last().unwrap());
    assert_eq!(end["message"]["status"], "COMPLETED");
    assert_eq!(end["message"]["content"], text);
    assert_eq!(end["message"]["totalTokens"], 30, "two turns' usage summed");
    assert_eq!(end["message"]["toolCalls"].as_array().unwrap().len(), 2);

    // The model was given the calls and their answers back.
    let second = models.seen.last_body.lock().unwrap().clone().unwrap();
    let roles: Vec<&str> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
    assert_eq!(second["messages"][2]["content"], "Let me look. ");
    assert_eq!(
        second["messages"][2]["tool_calls"][0]["function"]["name"],
        "add"
    );
    assert_eq!(second["messages"][3]["tool_call_id"], calls[0]["id"]);
    assert_eq!(second["tools"].as_array().unwrap().len(), 2);
    assert_eq!(second["tools"][0]["function"]["name"], "add");
    assert!(second["tools"][0]["function"]["parameters"]["properties"]["a"].is_object());

    // The same events over SSE, replayed after the end, in the same order.
    let mut sse = Sse::post(
        &server,
        Some(&app.key),
        STREAM,
        json!({ "id": reply, "after": 0 }),
    )
    .await;
    let (replayed, complete) = sse.until_complete().await;
    assert!(complete);
    assert_eq!(kinds(&replayed), seen);
    assert_eq!(text_of(&replayed), text);

    // History after a reload shows the calls.
    let stored = data(
        server
            .graphql_as(Some(&app.key), MESSAGE, json!({ "id": reply }))
            .await,
    )["message"]
        .clone();
    let stored_calls = stored["toolCalls"].as_array().unwrap();
    assert_eq!(stored_calls.len(), 2);
    assert_eq!(stored_calls[0]["id"], calls[0]["id"]);
    assert_eq!(stored_calls[0]["result"], json!({ "sum": 5.0 }));
    assert_eq!(stored_calls[1]["name"], "shout");

    // Each iteration is a NODE_PROGRESS of the run.
    let mut ws = Ws::connect(&server, WS, app.owner.token()).await;
    ws.subscribe("e", EXECUTION_EVENTS, json!({ "id": execution }))
        .await;
    let run = ws.until_complete("e").await;
    let progress: Vec<&Value> = run
        .iter()
        .map(|p| &p["data"]["executionEvents"])
        .filter(|e| e["kind"] == "NODE_PROGRESS")
        .collect();
    assert_eq!(progress.len(), 2, "{run:#?}");
    assert_eq!(progress[0]["nodeKey"], "agent");
    assert_eq!(progress[0]["nodeType"], "AGENT");
    assert_eq!(progress[0]["status"], "RUNNING");
    assert_eq!(progress[0]["outputs"]["iteration"], 1);
    assert_eq!(
        progress[0]["outputs"]["toolCalls"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(progress[1]["outputs"]["iteration"], 2);
    assert_eq!(progress[1]["outputs"]["toolCalls"], json!([]));
    let _ = (&app.tenant, &app.mcp_server);
}

#[tokio::test]
async fn a_client_resuming_after_a_tool_call_gets_the_rest_once() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent", &["add"], None).await;
    let (reply, _) = ask(&server, &app, r#"call: add {"a": 1, "b": 1}"#).await;
    let all = stream(&server, &app.key, &reply, 0).await;
    let call_seq = all
        .iter()
        .map(event)
        .find(|e| e["kind"] == "TOOL_CALL")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    let rest = stream(&server, &app.key, &reply, call_seq).await;
    assert_eq!(
        seqs(&rest, "messageStream"),
        ((call_seq + 1)..=all.len() as i64).collect::<Vec<_>>()
    );
    assert_eq!(event(&rest[0])["kind"], "TOOL_RESULT");
    assert_eq!(
        kinds(&rest),
        kinds(&all[call_seq as usize..]),
        "nothing twice, nothing lost"
    );
}

#[tokio::test]
async fn a_stop_during_a_slow_tool_call_stops_the_agent_and_cancels_the_call() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent", &["slow"], None).await;
    let (reply, _) = ask(&server, &app, r#"call: slow {"ms": 30000}"#).await;
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let first = ws.take("1", 2).await;
    assert_eq!(kinds(&first), ["DELTA", "TOOL_CALL"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while mcp.seen.slow_started.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the slow tool was called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let stopped = data(
        server
            .graphql_as(
                Some(&app.key),
                "mutation($id: UUID!) { stopMessage(messageId: $id) { status content toolCalls { name error } } }",
                json!({ "id": reply }),
            )
            .await,
    )["stopMessage"]
        .clone();
    assert_eq!(stopped["status"], "STOPPED");
    assert_eq!(stopped["content"], "Let me look. ");
    assert_eq!(stopped["toolCalls"][0]["name"], "slow");
    assert_eq!(stopped["toolCalls"][0]["error"], "the run was stopped");
    let rest = ws.until_complete("1").await;
    assert_eq!(kinds(&rest), ["END"], "no result, no more turns");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server was told: the tool's work stopped there.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mcp.seen.slow_cancelled.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the MCP server saw the cancellation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(models.seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_tool_error_goes_back_to_the_model_and_into_the_stream() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent", &["fail"], None).await;
    let (reply, _) = ask(&server, &app, "call: fail {} | nope {}").await;
    let live = stream(&server, &app.key, &reply, 0).await;
    let results: Vec<&Value> = tool_events(&live, "TOOL_RESULT");
    assert_eq!(results.len(), 2);
    let by_name = |name: &str| results.iter().find(|r| r["name"] == name).unwrap();
    assert_eq!(by_name("fail")["error"], "the warehouse is closed");
    assert_eq!(by_name("fail")["result"], Value::Null);
    assert_eq!(by_name("nope")["error"], "no tool named nope is offered");
    assert_eq!(
        text_of(&live),
        "Let me look. \n\nTools said: error: the warehouse is closed; error: no tool named nope is offered"
    );
    assert_eq!(
        event(live.last().unwrap())["message"]["status"],
        "COMPLETED"
    );
}

#[tokio::test]
async fn max_iterations_ends_with_a_turn_that_may_only_answer() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent-loop", &["add"], Some(2)).await;
    let (reply, execution) = ask(&server, &app, r#"call: add {"a": 1, "b": 2}"#).await;
    let live = stream(&server, &app.key, &reply, 0).await;
    assert_eq!(kinds(&live).iter().filter(|k| *k == "TOOL_CALL").count(), 2);
    assert!(
        text_of(&live).ends_with("Answered after 2 tool messages."),
        "{}",
        text_of(&live)
    );
    assert_eq!(models.seen.requests.load(Ordering::SeqCst), 3);
    let last = models.seen.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(last["tool_choice"], "none");
    assert_eq!(mcp.seen.calls.load(Ordering::SeqCst), 2);
    let outputs = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($id: UUID!) { execution(id: $id) { nodeResults { nodeKey outputs } } }",
                json!({ "id": execution }),
            )
            .await,
    )["execution"]["nodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["nodeKey"] == "agent")
        .unwrap()["outputs"]
        .clone();
    assert_eq!(outputs["iterations"], 3);
    assert_eq!(outputs["toolCalls"].as_array().unwrap().len(), 2);
    assert_eq!(outputs["usage"]["totalTokens"], 45);
}

#[tokio::test]
async fn echo_calls_a_tool_when_asked_so_a_builder_can_try_an_agent_without_a_model() {
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let echo = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Echo", "providerType": "ECHO", "models": ["echo"] } }),
            )
            .await,
    )["createLlmProvider"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let server_id = mcp_server(&server, &owner, &tenant, &mcp).await;
    let mut graph = agent_graph(
        &echo,
        "echo",
        json!([{ "mcpServerId": server_id, "name": "add" }]),
        None,
    );
    graph["nodes"][2] = json!({ "key": "end", "type": "END", "config": { "outputs": { "text": "{{agent.text}}" } } });
    graph["connections"][1]["target"] = json!("end");
    graph["nodes"][1]["config"]["prompt"] = json!("{{start.q}}");
    graph["nodes"][0]["config"] = json!({ "inputs": [{ "name": "q" }] });
    let flow = workflow(&server, &owner, &tenant, graph).await;
    let run = crate::tools::run_to_end(
        &server,
        &owner,
        &flow,
        json!({ "q": "/add {\"a\": 20, \"b\": 22}" }),
    )
    .await;
    assert_eq!(run["status"], "SUCCEEDED", "{run:#}");
    assert_eq!(run["outputs"]["text"], "Echo: 42");
}

#[tokio::test]
async fn agent_graphs_are_checked_when_saved() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let app = agent_app(&server, &models, &mcp, "agent", &["add"], None).await;
    let provider = provider(
        &server,
        &app.owner,
        &app.tenant,
        &models.base_url,
        KEY,
        None,
    )
    .await;
    // Another workspace's MCP server cannot be named.
    let stranger = register(&server, "stranger@example.com").await;
    let theirs = create_organization(&server, &stranger, "Other").await;
    let their_provider =
        crate::harness::chat::provider(&server, &stranger, &theirs, &models.base_url, KEY, None)
            .await;
    let before = server.scalar("SELECT count(*) FROM workflows").await;
    let refused = server
        .graphql_as(
            stranger.token(),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({ "i": { "workspaceId": theirs.workspace_id, "name": "Thief",
                "graph": agent_graph(&their_provider, "agent",
                    json!([{ "mcpServerId": app.mcp_server, "name": "add" }]), None) } }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused:#}");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "graph.nodes[1]"
    );
    for (tools, max, why) in [
        (json!("add"), None, "config.tools must be a list"),
        (
            json!([{ "mcpServerId": app.mcp_server, "name": "a.b" }, { "mcpServerId": app.mcp_server, "name": "a_b" }]),
            None,
            "another tool is offered under the name a_b",
        ),
        (json!([{ "name": "add" }]), None, "config.tools[0]"),
        (json!([]), Some(0), "config.maxIterations"),
        (json!([]), Some(21), "config.maxIterations"),
    ] {
        let answer = server
            .graphql_as(
                app.owner.token(),
                "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                json!({ "i": { "workspaceId": app.tenant.workspace_id, "name": "Bad",
                    "graph": agent_graph(&provider, "agent", tools, max) } }),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer:#}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(
        server.scalar("SELECT count(*) FROM workflows").await,
        before,
        "nothing written"
    );
}

/// What the "Agent with tools" template is for: a builder points its AGENT node at a model
/// and offers it an MCP server's tool and a plugin's tool, publishes, and end users see
/// both calls stream into their chat.
#[tokio::test]
async fn an_agent_from_the_template_looks_things_up_through_an_mcp_server_and_a_plugin() {
    let models = ModelServer::start().await;
    let mcp = McpServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let provider = provider(&server, &owner, &tenant, &models.base_url, KEY, None).await;
    let server_id = mcp_server(&server, &owner, &tenant, &mcp).await;
    let installation = crate::tools::install_plugin(
        &server,
        &owner,
        &tenant,
        "date-time",
        json!({ "timezone": "Europe/Paris" }),
    )
    .await;
    let created = from_official_template(&server, &owner, &tenant, "Agent with tools").await;
    let flow = created["id"].as_str().unwrap().to_string();
    let mut graph = created["currentVersion"]["graph"].clone();
    let agent = graph["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["type"] == "AGENT")
        .expect("the template has an agent");
    agent["config"]["providerId"] = json!(provider);
    agent["config"]["model"] = json!("agent");
    agent["config"]["tools"] = json!([
        { "mcpServerId": server_id, "name": "add" },
        { "installedPluginId": installation, "name": "shift" }
    ]);
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateWorkflowGraphInput!) { updateWorkflowGraph(input: $i) { id } }",
                json!({ "i": { "workflowId": flow, "graph": graph } }),
            )
            .await,
    );
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: PublishWorkflowInput!) { publishWorkflow(input: $i) { id } }",
                json!({ "i": { "workflowId": flow } }),
            )
            .await,
    );
    let (application, key) =
        application_with_key(&server, &owner, tenant.workspace_id, &flow, "CHAT").await;
    let app = AgentApp {
        owner,
        tenant,
        mcp_server: server_id,
        application,
        key,
    };
    let (reply, _) = ask(
        &server,
        &app,
        r#"call: add {"a": 40, "b": 2} | shift {"date": "2026-01-31", "amount": 1, "unit": "MONTHS"}"#,
    )
    .await;
    // The end user's chat UI, over graphql-sse.
    let mut sse = Sse::post(
        &server,
        Some(&app.key),
        STREAM,
        json!({ "id": reply, "after": 0 }),
    )
    .await;
    let (live, complete) = sse.until_complete().await;
    assert!(complete);
    let calls: Vec<&Value> = tool_events(&live, "TOOL_CALL");
    let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["add", "shift"], "{live:#?}");
    let results: Vec<&Value> = tool_events(&live, "TOOL_RESULT");
    assert_eq!(results.len(), 2);
    let shifted = results
        .iter()
        .find(|r| r["name"] == "shift")
        .expect("the plugin answered");
    assert_eq!(
        shifted["result"],
        json!({ "date": "2026-02-28", "weekday": "Sat" })
    );
    let text = text_of(&live);
    assert!(
        text.starts_with("Let me look. \n\nTools said: 42; "),
        "{text}"
    );
    assert!(text.contains("2026-02-28"), "{text}");
    let end = event(live.last().unwrap());
    assert_eq!(end["message"]["status"], "COMPLETED");
    assert_eq!(end["message"]["toolCalls"].as_array().unwrap().len(), 2);
    let _ = (&app.tenant, &app.mcp_server);
}
